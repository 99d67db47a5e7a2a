"""Events the mailer gave up on: parked in the dead-letter queue, recorded in `dead_letters`,
listed and replayed by an operator (`userreg dead-letters list|replay`).

The queue holds the replayable original (it carries the confirmation link); the table holds the
history an operator reads, with tokens redacted. Messages that reached the queue without the
mailer's help (the broker's delivery limit) are recorded the first time they are listed or replayed.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.mailer.policy import redact
from userreg.shared.db import create_engine
from userreg.shared.db.mail import DeadLetter
from userreg.shared.messaging import Topology, declare_topology
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

# Headers the mailer puts on the messages it moves between its queues.
ATTEMPTS = "x-userreg-attempts"          # failed attempts so far
DEFERRALS = "x-userreg-deferrals"        # times put back because another mailer was sending
LAST_ERROR = "x-userreg-last-error"
REASON = "x-userreg-reason"              # why it was dead-lettered
FAILURE = "x-userreg-failure"            # the kind of failure, as in the metrics
DEAD_LETTERED_AT = "x-userreg-dead-lettered-at"
REPLAYED_AT = "x-userreg-replayed-at"
# The broker's own bookkeeping, which would otherwise pile up on every trip through a delay queue.
_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                   "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")
_DEAD_LETTER_HEADERS = (REASON, FAILURE, DEAD_LETTERED_AT, LAST_ERROR)
PUBLISH_TIMEOUT_SECONDS = 15.0
MAX_PAYLOAD_CHARS = 20_000


def int_header(message: AbstractIncomingMessage, name: str) -> int:
    value = (message.headers or {}).get(name)
    try:
        return max(int(value), 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def copy_message(message: AbstractIncomingMessage, *, headers: dict[str, Any],
                 drop: tuple[str, ...] = ()) -> aio_pika.Message:
    """A persistent copy of a received message to publish elsewhere, with its headers updated."""
    kept = {key: value for key, value in (message.headers or {}).items()
            if key not in _BROKER_HEADERS and key not in drop}
    return aio_pika.Message(
        body=message.body,
        headers={**kept, **headers},
        content_type=message.content_type,
        message_id=message.message_id or str(uuid.uuid4()),
        type=message.type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def dead_letter_id(message: AbstractIncomingMessage | aio_pika.Message) -> str:
    return message.message_id or "unknown"


def payload_of(body: bytes) -> dict[str, Any]:
    """What the table keeps of a message body: the event JSON with link tokens redacted, or the
    (redacted, truncated) text of a body that is not a JSON object."""
    text = redact(body.decode("utf-8", errors="replace"))
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and len(text) <= MAX_PAYLOAD_CHARS:
        return parsed
    return {"raw": text[:MAX_PAYLOAD_CHARS]}


def _app_id_of(message: AbstractIncomingMessage | aio_pika.Message, payload: dict[str, Any]) -> str | None:
    app_id = (message.headers or {}).get("x-app-id") or payload.get("appId")
    return str(app_id)[:36] if app_id else None


def _broker_reason(message: AbstractIncomingMessage) -> str:
    """Why the broker dead-lettered a message on its own (the quorum queue's delivery limit)."""
    deaths = (message.headers or {}).get("x-death") or []
    if deaths and isinstance(deaths[0], dict):
        return f"dead-lettered by RabbitMQ: {deaths[0].get('reason', 'unknown reason')} " \
               f"in {deaths[0].get('queue', 'a queue')}"
    return "dead-lettered without a recorded reason"


async def park(exchange: AbstractExchange, topology: Topology, message: AbstractIncomingMessage, *,
               kind: str, reason: str, attempts: int) -> aio_pika.Message:
    """Publish a copy of the message to the dead-letter queue (confirmed by the broker); the caller
    acknowledges the original afterwards. Returns the parked copy."""
    parked = copy_message(message, headers={
        REASON: reason, FAILURE: kind, ATTEMPTS: attempts,
        DEAD_LETTERED_AT: datetime.now(timezone.utc).isoformat(),
    })
    await exchange.publish(parked, routing_key=topology.mailer_dead_letter_queue, mandatory=True,
                           timeout=PUBLISH_TIMEOUT_SECONDS)
    return parked


async def record(engine: AsyncEngine, parked: aio_pika.Message, *, reason: str, attempts: int) -> None:
    """Write (or refresh, when it died again after a replay) the dead letter's row."""
    payload = payload_of(parked.body)
    row = {
        "event_id": dead_letter_id(parked)[:100],
        "event_type": (parked.type or payload.get("type") or None),
        "app_id": _app_id_of(parked, payload),
        "reason": reason,
        "attempts": attempts,
        "payload": payload,
    }
    statement = insert(DeadLetter).values(row)
    statement = statement.on_conflict_do_update(
        index_elements=[DeadLetter.event_id],
        set_={"reason": statement.excluded.reason, "attempts": statement.excluded.attempts,
              "payload": statement.excluded.payload, "dead_lettered_at": func.now(),
              "times_dead_lettered": DeadLetter.times_dead_lettered + 1},
    )
    async with engine.begin() as connection:
        await connection.execute(statement)


async def _record_if_missing(engine: AsyncEngine, message: AbstractIncomingMessage) -> None:
    payload = payload_of(message.body)
    reason = (message.headers or {}).get(REASON) or _broker_reason(message)
    async with engine.begin() as connection:
        await connection.execute(insert(DeadLetter).values(
            event_id=dead_letter_id(message)[:100], event_type=message.type or payload.get("type"),
            app_id=_app_id_of(message, payload), reason=str(reason), attempts=int_header(message, ATTEMPTS),
            payload=payload,
        ).on_conflict_do_nothing(index_elements=[DeadLetter.event_id]))


def _as_json(row: Any, *, queued: bool, failure: str | None = None) -> dict[str, Any]:
    return {
        "eventId": row.event_id,
        "type": row.event_type,
        "appId": row.app_id,
        "reason": row.reason,
        "failure": failure,
        "attempts": row.attempts,
        "deadLetteredAt": row.dead_lettered_at.isoformat(),
        "timesDeadLettered": row.times_dead_lettered,
        "replayedAt": row.replayed_at.isoformat() if row.replayed_at else None,
        "queued": queued,
        "payload": row.payload,
    }


async def _connect(settings: Settings) -> aio_pika.abc.AbstractConnection:
    # A one-off command: a plain connection that fails fast, not a self-healing one.
    return await aio_pika.connect(settings.amqp_dsn,
                                  client_properties={"connection_name": "userreg-dead-letters"})


async def list_dead_letters(settings: Settings, *, include_replayed: bool = False,
                            limit: int = 1000) -> list[dict[str, Any]]:
    """The dead letters waiting in the queue (oldest first) with their recorded reasons, as JSON-ready
    dicts; with `include_replayed`, also recorded ones no longer queued (replayed earlier)."""
    topology = Topology.from_settings(settings)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    connection = await _connect(settings)
    try:
        channel = await connection.channel()
        await declare_topology(channel, topology)
        queue = await channel.get_queue(topology.mailer_dead_letter_queue)
        queued: list[AbstractIncomingMessage] = []
        # Browsing: take messages without acknowledging them; closing the channel puts them back.
        while len(queued) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            queued.append(message)
        await channel.close()
        for message in queued:
            await _record_if_missing(engine, message)
        ids = [dead_letter_id(message)[:100] for message in queued]
        table = DeadLetter.__table__
        async with engine.connect() as db:
            found = await db.execute(select(table).where(table.c.event_id.in_(ids)))
            rows = {row.event_id: row for row in found}
            listed = [_as_json(rows[event_id], queued=True, failure=(message.headers or {}).get(FAILURE))
                      for event_id, message in zip(ids, queued, strict=True) if event_id in rows]
            if include_replayed:
                history = await db.execute(select(table).where(table.c.event_id.not_in(ids))
                                           .order_by(table.c.dead_lettered_at).limit(limit))
                listed.extend(_as_json(row, queued=False) for row in history)
        return listed
    finally:
        await connection.close()
        await engine.dispose()


async def replay(settings: Settings, event_ids: list[str] | None = None) -> int:
    """Move dead letters back into the mailer queue: those with the given event ids, or all of them
    (None). Each is published (broker-confirmed) before it leaves the dead-letter queue, and starts
    again with a full set of retries. Returns how many were re-queued."""
    wanted = None if event_ids is None else set(event_ids)
    topology = Topology.from_settings(settings)
    engine = create_engine(settings, pool_size=1, max_overflow=0)
    connection = await _connect(settings)
    replayed: list[str] = []
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await declare_topology(channel, topology)
        queue = await channel.get_queue(topology.mailer_dead_letter_queue)
        # Look at each message once: one that fails again while we are at it is parked anew and
        # must not be picked up by this same run.
        remaining = queue.declaration_result.message_count or 0
        while remaining > 0:
            remaining -= 1
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            event_id = dead_letter_id(message)
            if (wanted is not None and event_id not in wanted) or event_id in replayed:
                continue  # left unacknowledged: back in the queue when the channel closes
            await _record_if_missing(engine, message)
            again = copy_message(message, drop=_DEAD_LETTER_HEADERS, headers={
                ATTEMPTS: 0, DEFERRALS: 0, REPLAYED_AT: datetime.now(timezone.utc).isoformat()})
            await channel.default_exchange.publish(again, routing_key=topology.mailer_queue, mandatory=True,
                                                   timeout=PUBLISH_TIMEOUT_SECONDS)
            await message.ack()
            replayed.append(event_id)
            logger.info("replayed dead letter %s", event_id)
        await channel.close()
        if replayed:
            async with engine.begin() as db:
                await db.execute(update(DeadLetter)
                                 .where(DeadLetter.event_id.in_([event_id[:100] for event_id in replayed]))
                                 .values(replayed_at=func.now()))
        return len(replayed)
    finally:
        await connection.close()
        await engine.dispose()
