"""Helpers of the mailer tests: their own settings and topology, the mailer in-process, events."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import aio_pika
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY
from sqlalchemy import select
from userreg.mailer.web import CONSUMER, create_app
from userreg.shared.db import App
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.events import USER_REGISTERED, Confirmation, Event, EventUser
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings

from tests.support.polling import eventually

RETRY_DELAYS = "0.2,0.5"


def settings_for(settings: Settings, *, smtp_port: int, retry_delays: str = RETRY_DELAYS,
                 **changes: Any) -> Settings:
    """The session's settings with a topology of the test's own and the test's SMTP server."""
    return settings.model_copy(update={
        "events_exchange": f"{settings.events_exchange}.{uuid.uuid4().hex[:8]}",
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_timeout": 5.0,
        "mailer_retry_delays": retry_delays,
        "mail_from": "Test App <no-reply@mail.test>",
        **changes,
    })


async def remove_topology(settings: Settings) -> None:
    await delete_topology(settings.amqp_dsn, Topology.from_settings(settings))


@contextlib.asynccontextmanager
async def running_mailer(settings: Settings) -> AsyncIterator[TestServer]:
    """The mailer's own app (consumer + /health, /ready, /metrics) on a free port, consuming."""
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        await eventually(lambda: server.app[CONSUMER].ready, timeout=20, what="the mailer to consume")
        yield server
    finally:
        await server.close()


class Publisher:
    """Publishes events the way the outbox relay does (persistent, confirmed, id = event id)."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, exchange: str) -> None:
        self._channel = channel
        self._exchange_name = exchange

    async def __call__(self, event: Event, *, body: bytes | None = None) -> None:
        exchange = await self._channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC,
                                                        durable=True)
        await exchange.publish(
            aio_pika.Message(body=event.to_bytes() if body is None else body, message_id=event.id,
                             type=event.type, content_type="application/json",
                             delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             headers={"x-app-id": event.app_id, "x-event-version": 1}),
            routing_key=event.type, mandatory=True, timeout=10)


def make_event(app: App, *, type: str = USER_REGISTERED, email: str | None = None, name: str | None = "Ada",
               locale: str | None = None, confirmation: bool = True, properties: dict | None = None) -> Event:
    email = email if email is not None else f"user-{uuid.uuid4().hex[:10]}@example.com"
    props = {"email": email, "name": name, "blUserLocale": locale, **(properties or {})}
    token = (uuid.uuid4().hex + uuid.uuid4().hex)[:43]
    return Event(
        type=type, appId=app.app_id,
        user=EventUser(objectId=str(uuid.uuid4()).upper(), identityProperty="email", identity=email,
                       email=email, name=name, locale=locale,
                       properties={key: value for key, value in props.items() if value is not None}),
        confirmation=Confirmation(url=f"http://confirm.test.invalid/{app.app_id}/confirm/{token}",
                                  expiresAt=datetime.now(timezone.utc) + timedelta(days=1))
        if confirmation else None,
    )


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counters:
    """How much counters grew since `track()` (metrics are per process, tests in one process run
    one after the other)."""

    def __init__(self) -> None:
        self._start: dict[tuple, float] = {}

    def track(self, name: str, **labels: str) -> Counters:
        self._start[(name, tuple(sorted(labels.items())))] = metric(name, **labels)
        return self

    def __call__(self, name: str, **labels: str) -> float:
        return metric(name, **labels) - self._start[(name, tuple(sorted(labels.items())))]


async def delivery_rows(sessions, event_id: str) -> list[MailDelivery]:
    async with sessions() as session:
        rows = await session.scalars(
            select(MailDelivery).where(MailDelivery.event_id == event_id).order_by(MailDelivery.template))
        return list(rows.all())


async def sent_rows(sessions, event_id: str, count: int = 1) -> list[MailDelivery]:
    """The event's delivery records once `count` of them say SENT (the email is accepted a moment
    before that is recorded)."""
    async def all_sent() -> list[MailDelivery] | None:
        rows = await delivery_rows(sessions, event_id)
        return rows if len(rows) == count and all(row.status is DeliveryStatus.SENT for row in rows) else None

    return await eventually(all_sent, what=f"{count} sent deliveries of event {event_id}")


async def dead_letter_row(sessions, event_id: str) -> DeadLetter | None:
    async with sessions() as session:
        return await session.get(DeadLetter, event_id, populate_existing=True)
