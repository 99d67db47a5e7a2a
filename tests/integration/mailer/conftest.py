"""Mailer fixtures: a real SMTP inbox on a socket, a topology of each test's own (short retry
delays, removed afterwards), the mailer running in-process, and an event publisher."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.integration.mailer.helpers import Counters, Publisher, remove_topology, running_mailer, settings_for
from userreg.inbox import Inbox
from userreg.shared.settings import Settings


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with Inbox(smtp_port=0, http_port=None) as running:
        yield running


@pytest.fixture
async def topologies() -> AsyncIterator[list[Settings]]:
    """Settings whose topologies are removed after the test: append yours."""
    made: list[Settings] = []
    yield made
    for settings in made:
        await remove_topology(settings)


@pytest.fixture
def mail_settings(settings: Settings, inbox: Inbox, topologies: list[Settings]) -> Settings:
    made = settings_for(settings, smtp_port=inbox.smtp_port)
    topologies.append(made)
    return made


@pytest.fixture
async def mailer(mail_settings: Settings) -> AsyncIterator[TestServer]:
    async with running_mailer(mail_settings) as server:
        yield server


@pytest.fixture
async def publish(mail_settings: Settings, amqp_connection) -> AsyncIterator[Publisher]:
    """`await publish(event)`; declare the topology first (the `mailer` fixture does)."""
    channel = await amqp_connection.channel(publisher_confirms=True, on_return_raises=True)
    yield Publisher(channel, mail_settings.events_exchange)
    await channel.close()


@pytest.fixture
def counters() -> Counters:
    return Counters()


@pytest.fixture
async def publish_to(amqp_connection):
    """`publish = await publish_to(settings)`: a publisher for a topology made inside the test."""
    channels = []

    async def make(settings: Settings) -> Publisher:
        channel = await amqp_connection.channel(publisher_confirms=True, on_return_raises=True)
        channels.append(channel)
        return Publisher(channel, settings.events_exchange)

    yield make
    for channel in channels:
        await channel.close()
