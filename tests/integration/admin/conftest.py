"""Running the `userreg` command in-process against the test session's database and exchange."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import pytest

from userreg.admin.cli import main
from userreg.shared.events import Event
from userreg.shared.messaging import Topology, declare_topology, delete_topology
from userreg.shared.settings import Settings


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


def command_environment(settings: Settings) -> dict[str, str]:
    """The environment that makes `Settings()` read the test session's settings."""
    return {
        "DATABASE_URL": settings.database_dsn,
        "AMQP_URL": settings.amqp_dsn,
        "EVENTS_EXCHANGE": settings.events_exchange,
        "PUBLIC_CONFIRMATION_URL": settings.public_confirmation_url,
        "ARGON2_MEMORY_KIB": str(settings.argon2_memory_kib),
        "ARGON2_TIME_COST": str(settings.argon2_time_cost),
    }


@pytest.fixture
def userreg(settings, monkeypatch, capsys):
    """`userreg("app", "list")` runs the command's main and returns its exit code and output.
    From an async test, call it through `asyncio.to_thread` (it runs its own event loop)."""
    for name, value in command_environment(settings).items():
        monkeypatch.setenv(name, value)

    def run(*argv: object) -> Outcome:
        capsys.readouterr()
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return Outcome(code, out, err)

    return run


def unique_name(prefix: str = "app") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def new_app(userreg):
    """Create an app through the command: `new_app(email_confirmation=True)` → its JSON."""

    def create(email_confirmation: bool = False) -> dict[str, Any]:
        argv = ["app", "create", "--name", unique_name()]
        if email_confirmation:
            argv.append("--email-confirmation")
        outcome = userreg(*argv)
        assert outcome.code == 0, outcome.err
        return outcome.json

    return create


@pytest.fixture
def create_user(userreg, monkeypatch):
    """`create_user(APP, "email=…", password="pw")`: `userreg user create APP … --password-stdin`,
    the password on its standard input. Call it through `asyncio.to_thread` from an async test."""

    def create(app: str, *properties: str, password: str = "pw"):
        monkeypatch.setattr(sys, "stdin", io.StringIO(f"{password}\n"))
        return userreg("user", "create", app, *properties, "--password-stdin")

    return create


@pytest.fixture
def auserreg(userreg):
    """`await auserreg("app", "list")`: the command from an async test, in a thread of its own."""

    async def run(*argv: object) -> Outcome:
        return await asyncio.to_thread(userreg, *argv)

    return run


@pytest.fixture
async def own_topology(settings, monkeypatch, userreg):
    """A topology of the test's own (its dead-letter queue holds only the test's letters), which the
    command uses through EVENTS_EXCHANGE; removed afterwards."""
    topology = Topology(f"userreg.test.dl.{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("EVENTS_EXCHANGE", topology.exchange)
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        await declare_topology(await connection.channel(), topology)
    finally:
        await connection.close()
    yield topology
    await delete_topology(settings.amqp_dsn, topology)


async def park(settings, topology: Topology, event: Event) -> None:
    """Put an event in the dead-letter queue as the mailer does when it gives up."""
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                event.to_bytes(),
                message_id=event.id,
                type=event.type,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={"x-userreg-reason": "550 mailbox unavailable", "x-app-id": event.app_id},
            ),
            routing_key=topology.mailer_dead_letter_queue,
        )
    finally:
        await connection.close()
