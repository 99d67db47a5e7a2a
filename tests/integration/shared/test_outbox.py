"""The outbox relay against the real PostgreSQL and RabbitMQ."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.support.polling import eventually
from userreg.shared.db import OutboxEvent, create_engine
from userreg.shared.events import USER_REGISTERED, Event, EventUser
from userreg.shared.outbox import CONFIRMATION_WEB_PRODUCER, REGISTRATION_PRODUCER, OutboxRelay, enqueue
from userreg.shared.runtime.tasks import Supervised


def _event(app_id: str, n: int = 0) -> Event:
    return Event(
        type=USER_REGISTERED,
        appId=app_id,
        user=EventUser(objectId=f"U{n}", identityProperty="email", identity=f"u{n}@example.com"),
    )


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay):
    """The relay as the services run it: supervised, started again after each failure."""
    async with Supervised("outbox-relay", relay.run, ready=lambda: relay.connected) as part:
        yield part


async def test_committed_event_is_published_at_once_and_its_row_deleted(
    engine, sessions, settings, topology, make_app, event_queue
):
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

    async def row_deleted() -> bool:
        # The relay deletes the row once the broker confirmed the publish, in the transaction that
        # claimed it: it may commit a moment after the message reached the queue.
        async with sessions() as session:
            return await session.scalar(select(func.count()).where(OutboxEvent.event_id == event.id)) == 0

    await eventually(row_deleted, timeout=10, what="the relayed row to be deleted")


async def test_rolled_back_event_is_never_published(engine, sessions, settings, topology, make_app, event_queue):
    app = await make_app()
    rolled_back, committed = _event(app.app_id, 1), _event(app.app_id, 2)
    async with sessions() as session, session.begin():
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


async def test_a_row_the_relay_cannot_parse_does_not_hold_up_the_others(
    engine, sessions, settings, topology, make_app, event_queue
):
    from userreg.shared.db import OutboxEvent as Row

    app = await make_app()
    newer, current = _event(app.app_id, 5), _event(app.app_id, 6)
    async with sessions() as session, session.begin():
        # As a newer replica would write it during a rolling upgrade.
        session.add(
            Row(
                event_id=newer.id,
                routing_key=newer.type,
                payload={**newer.to_json_dict(), "version": 2, "user": {"somethingNew": True}},
            )
        )
        enqueue(session, current)
    async with running(OutboxRelay(engine, settings.amqp_dsn, topology)):
        first = await _next_message(event_queue, newer.id)
        second = await _next_message(event_queue, current.id)
    assert json.loads(first.body)["version"] == 2
    assert Event.from_bytes(second.body) == current


class CountingRelay(OutboxRelay):
    """A relay that counts its rounds (each round is a claim query, woken or timed)."""

    rounds = 0

    async def relay_batch(self, exchange):
        self.rounds += 1
        return await super().relay_batch(exchange)


async def test_a_relay_wakes_only_for_what_its_own_service_inserts(settings, topology, make_app, event_queue):
    """confirmation-web's relay sleeps through registration's events (and the other way round):
    the notification carries the inserting session's application_name (migration 0009)."""
    app = await make_app()
    registration_engine = create_engine(settings, application_name=REGISTRATION_PRODUCER)
    confirmation_engine = create_engine(settings, application_name=CONFIRMATION_WEB_PRODUCER)
    registration = CountingRelay(
        registration_engine,
        settings.amqp_dsn,
        topology,
        poll_seconds=60,
        producer=REGISTRATION_PRODUCER,
        unowned_too=True,
    )
    confirmation = CountingRelay(
        confirmation_engine, settings.amqp_dsn, topology, poll_seconds=60, producer=CONFIRMATION_WEB_PRODUCER
    )
    try:
        async with running(registration), running(confirmation):
            for engine, number in ((registration_engine, 200), (confirmation_engine, 201)):
                warm_up = _event(app.app_id, number)  # each relay connected and listening
                async with async_sessionmaker(engine)() as session, session.begin():
                    enqueue(session, warm_up)
                await _next_message(event_queue, warm_up.id, timeout=30)
            await asyncio.sleep(0.5)
            before = registration.rounds, confirmation.rounds
            for number in range(5):
                event = _event(app.app_id, 300 + number)
                async with async_sessionmaker(registration_engine)() as session, session.begin():
                    enqueue(session, event)
                await _next_message(event_queue, event.id)
            await asyncio.sleep(0.5)
            assert confirmation.rounds == before[1]
            assert registration.rounds >= before[0] + 5
    finally:
        await registration_engine.dispose()
        await confirmation_engine.dispose()
