"""The outbox relay against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from sqlalchemy import func, select

from userreg.shared.db import OutboxEvent
from userreg.shared.events import USER_REGISTERED, Event, EventUser
from userreg.shared.outbox import OutboxRelay, enqueue
from userreg.shared.runtime.tasks import Supervised


def _event(app_id: str, n: int = 0) -> Event:
    return Event(type=USER_REGISTERED, appId=app_id,
                 user=EventUser(objectId=f"U{n}", identityProperty="email", identity=f"u{n}@example.com"))


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay):
    """The relay as the services run it: supervised, started again after each failure."""
    async with Supervised("outbox-relay", relay.run, ready=lambda: relay.connected) as part:
        yield part


async def test_committed_event_is_published_at_once_and_its_row_deleted(engine, sessions, settings, topology,
                                                                        make_app, event_queue):
    app = await make_app()
    relay = OutboxRelay(engine, settings.amqp_dsn, topology, poll_seconds=30)  # only NOTIFY can wake it in time
    async with running(relay):
        # A first event proves the relay is connected and listening, whatever the machine's load.
        warm_up = _event(app.app_id, 100)
        async with sessions() as session, session.begin():
            enqueue(session, warm_up)
        await _next_message(event_queue, warm_up.id, timeout=30)
        event = _event(app.app_id)
        started = time.monotonic()
        async with sessions() as session, session.begin():
            enqueue(session, event)
        message = await _next_message(event_queue, event.id)
        latency = time.monotonic() - started

    assert latency < 2, "the relay must be woken by the commit, not by its 30 s timer"
    assert message.message_id == event.id
    assert message.type == USER_REGISTERED
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2
    assert json.loads(message.body)["user"]["identity"] == "u0@example.com"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(OutboxEvent.event_id == event.id)) == 0


async def test_rolled_back_event_is_never_published(engine, sessions, settings, topology, make_app, event_queue):
    app = await make_app()
    rolled_back, committed = _event(app.app_id, 1), _event(app.app_id, 2)
    async with sessions() as session:
        async with session.begin():
            enqueue(session, rolled_back)
            await session.flush()
            await session.rollback()
    async with sessions() as session, session.begin():
        enqueue(session, committed)
    async with running(OutboxRelay(engine, settings.amqp_dsn, topology)):
        message = await _next_message(event_queue, committed.id)
    assert message.message_id == committed.id


async def test_events_wait_for_an_unreachable_broker(engine, sessions, settings, topology, make_app, event_queue):
    app = await make_app()
    event = _event(app.app_id, 3)
    async with sessions() as session, session.begin():
        enqueue(session, event)
    async with running(OutboxRelay(engine, "amqp://guest:guest@127.0.0.1:1/", topology)):
        await asyncio.sleep(1)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(OutboxEvent.event_id == event.id)) == 1
    async with running(OutboxRelay(engine, settings.amqp_dsn, topology)):
        assert (await _next_message(event_queue, event.id)).message_id == event.id


async def _next_message(queue, event_id: str, timeout: float = 10):
    """The message with this id, skipping others the session's exchange carried."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = await queue.get(fail=False, no_ack=True)
        if message is None:
            await asyncio.sleep(0.02)
        elif message.message_id == event_id:
            return message
    raise AssertionError(f"event {event_id} was not published within {timeout}s")


async def test_database_errors_never_show_statement_parameters(engine, sessions, make_app):
    """Error messages reach logs and terminals: an outbox row's link must not be in them."""
    from sqlalchemy.exc import IntegrityError

    app = await make_app()
    event = _event(app.app_id, 4)
    async with sessions() as session, session.begin():
        enqueue(session, event)
    try:
        async with sessions() as session, session.begin():
            enqueue(session, event)  # the same event id again: a unique violation
    except IntegrityError as error:
        assert "u4@example.com" not in str(error)
        assert "hidden due to hide_parameters" in str(error)
    else:
        raise AssertionError("a duplicate event id must be refused")


async def test_a_row_the_relay_cannot_parse_does_not_hold_up_the_others(engine, sessions, settings, topology,
                                                                        make_app, event_queue):
    from userreg.shared.db import OutboxEvent as Row

    app = await make_app()
    newer, current = _event(app.app_id, 5), _event(app.app_id, 6)
    async with sessions() as session, session.begin():
        # As a newer replica would write it during a rolling upgrade.
        session.add(Row(event_id=newer.id, routing_key=newer.type,
                        payload={**newer.to_json_dict(), "version": 2, "user": {"somethingNew": True}}))
        enqueue(session, current)
    async with running(OutboxRelay(engine, settings.amqp_dsn, topology)):
        first = await _next_message(event_queue, newer.id)
        second = await _next_message(event_queue, current.id)
    assert json.loads(first.body)["version"] == 2
    assert Event.from_bytes(second.body) == current
