"""The operator's side of the dead letters (`userreg dead-letters list|replay`, through
`operations.py`): list what waits in the dead-letter queue with its recorded reason, and replay it
into the mailer queue.

The queue holds the replayable original (it carries the confirmation link); the table holds the
history an operator reads, with tokens redacted. Messages that reached the queue without the
mailer's help (the broker's delivery limit) are recorded the first time they are listed or replayed.
(Parking a message there is the consumer's job; the copies are `envelope.py`'s, the rows
`repository.py`'s.)
"""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.mailer import envelope, repository
from userreg.shared.db import create_engine
from userreg.shared.messaging import Topology, declare_topology
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)


async def _record_if_missing(engine: AsyncEngine, message: AbstractIncomingMessage) -> None:
    await repository.record_dead_letter_if_missing(
        engine,
        envelope.dead_letter_record(
            message, reason=envelope.recorded_reason(message), attempts=envelope.failed_attempts(message)
        ),
    )


async def _hand_back(browsed: list[AbstractIncomingMessage]) -> None:
    """Give back the messages taken but not acknowledged, in one nack that requeues them. Unlike a
    closed channel (or a reject), a nack is no failed delivery on RabbitMQ 4.3 and later: browsing
    does not bring the letters closer to a delivery limit (see `messaging.dead_letter_queue_arguments`)."""
    if browsed:
        await browsed[-1].nack(multiple=True, requeue=True)


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
    return await aio_pika.connect(settings.amqp_dsn, client_properties={"connection_name": "userreg-dead-letters"})


async def list_dead_letters(
    settings: Settings, *, include_replayed: bool = False, limit: int = 1000
) -> list[dict[str, Any]]:
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
        # Browsing: take messages without acknowledging them, then hand them all back.
        while len(queued) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            queued.append(message)
        await _hand_back(queued)
        await channel.close()
        for message in queued:
            await _record_if_missing(engine, message)
        ids = [envelope.dead_letter_id(message)[:100] for message in queued]
        rows, history = await repository.find_dead_letters(engine, ids, others=limit if include_replayed else 0)
        listed = [
            _as_json(rows[event_id], queued=True, failure=envelope.failure_kind(message))
            for event_id, message in zip(ids, queued, strict=True)
            if event_id in rows
        ]
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
        skipped: list[AbstractIncomingMessage] = []
        while remaining > 0:
            remaining -= 1
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            event_id = envelope.dead_letter_id(message)
            if (wanted is not None and event_id not in wanted) or event_id in replayed:
                skipped.append(message)  # handed back at the end, so that this run cannot take it again
                continue
            await _record_if_missing(engine, message)
            again = envelope.replay(message, topology)
            await channel.default_exchange.publish(
                again.message, routing_key=again.queue, mandatory=True, timeout=envelope.PUBLISH_TIMEOUT_SECONDS
            )
            await message.ack()
            replayed.append(event_id)
            logger.info("replayed dead letter %s", event_id)
        await _hand_back(skipped)
        await channel.close()
        if replayed:
            await repository.mark_replayed(engine, [event_id[:100] for event_id in replayed])
        return len(replayed)
    finally:
        await connection.close()
        await engine.dispose()
