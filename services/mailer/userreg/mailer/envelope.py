"""The envelope of the messages the mailer moves between its queues. The body is the event; the
headers carry the event's history: its failed attempts and deferrals, why it was dead-lettered,
the broker's own bookkeeping (x-death, x-delivery-count, x-acquired-count). Here the mailer reads
them, and makes the copies it publishes, each with the queue it goes to:

* a retry (counted attempt) or a deferral (not counted) → the delay queue of its delay, which
  dead-letters it back into the mailer queue when the delay is over;
* a dead letter → the dead-letter queue, with the reason;
* a replay → the mailer queue, with a fresh set of retries.

No I/O: the consumer and `dead_letters.replay` publish what this makes.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import pydantic
from aio_pika.abc import AbstractIncomingMessage

from userreg.mailer.rules.policy import PermanentFailure
from userreg.mailer.rules.redaction import redact
from userreg.shared.clock import utcnow
from userreg.shared.events import Event
from userreg.shared.messaging import Topology

# Headers the mailer puts on the messages it moves between its queues.
ATTEMPTS = "x-userreg-attempts"  # failed attempts so far
DEFERRALS = "x-userreg-deferrals"  # times put back because another mailer was sending
LAST_ERROR = "x-userreg-last-error"
REASON = "x-userreg-reason"  # why it was dead-lettered
FAILURE = "x-userreg-failure"  # the kind of failure, as in the metrics
DEAD_LETTERED_AT = "x-userreg-dead-lettered-at"
REPLAYED_AT = "x-userreg-replayed-at"
# How often a quorum queue handed the message out before without it being settled. RabbitMQ 3 and
# 4.0–4.2 count every such return in x-delivery-count; from 4.3 x-delivery-count counts only failed
# ones (a reject, a closed channel, a lost connection) and x-acquired-count all of them.
DELIVERY_COUNT = "x-delivery-count"
ACQUIRED_COUNT = "x-acquired-count"
# The broker's own bookkeeping, which would otherwise pile up on every trip through a delay queue.
_BROKER_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    DELIVERY_COUNT,
    ACQUIRED_COUNT,
)
_DEAD_LETTER_HEADERS = (REASON, FAILURE, DEAD_LETTERED_AT, LAST_ERROR)
# Publishing a copy waits this long for the broker's confirmation.
PUBLISH_TIMEOUT_SECONDS = 15.0
MAX_PAYLOAD_CHARS = 20_000

Received = AbstractIncomingMessage | aio_pika.Message


@dataclass(frozen=True)
class Outgoing:
    """A persistent copy of a received message and the queue it is published to (through the
    default exchange, mandatory and confirmed)."""

    message: aio_pika.Message
    queue: str


def decode_event(body: bytes) -> Event:
    """The event in a message body; `PermanentFailure` (kind "malformed") if it is not a valid one."""
    try:
        event = Event.from_bytes(body)
    except pydantic.ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise PermanentFailure(
            "malformed",
            f"not a valid version-1 event ({error.error_count()} problem(s); first: {where}: {first['msg']})",
        ) from None
    try:
        uuid.UUID(event.id)
    except ValueError:
        raise PermanentFailure("malformed", "the event id is not a UUID") from None
    return event


def int_header(message: Received, name: str) -> int:
    """A count the headers carry; 0 when it is missing or not a count."""
    value = (message.headers or {}).get(name)
    try:
        # Whatever the header holds: int() refuses (TypeError, ValueError) what is not a count.
        return max(int(value), 0)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def failed_attempts(message: Received) -> int:
    return int_header(message, ATTEMPTS)


def deferrals(message: Received) -> int:
    return int_header(message, DEFERRALS)


def redeliveries(message: Received) -> int:
    """How often the broker handed this message out before without it being settled, whichever
    RabbitMQ counted it (the larger count: x-acquired-count where there is one)."""
    return max(int_header(message, DELIVERY_COUNT), int_header(message, ACQUIRED_COUNT))


def _copy(message: AbstractIncomingMessage, *, headers: dict[str, Any], drop: tuple[str, ...] = ()) -> aio_pika.Message:
    """A persistent copy of a received message to publish elsewhere, with its headers updated."""
    kept = {
        key: value for key, value in (message.headers or {}).items() if key not in _BROKER_HEADERS and key not in drop
    }
    return aio_pika.Message(
        body=message.body,
        headers={**kept, **headers},
        content_type=message.content_type,
        message_id=message.message_id or str(uuid.uuid4()),
        type=message.type,
        timestamp=message.timestamp,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def retry(
    message: AbstractIncomingMessage, topology: Topology, *, delay: float, attempts: int, last_error: str
) -> Outgoing:
    """Into the delay queue of `delay` after a failed attempt (`attempts` failed so far)."""
    return Outgoing(
        _copy(message, headers={ATTEMPTS: attempts, LAST_ERROR: last_error}), topology.mailer_retry_queue(delay)
    )


def deferral(message: AbstractIncomingMessage, topology: Topology, *, delay: float) -> Outgoing:
    """Into the delay queue of `delay` for a reason that is not the email's: no attempt counted."""
    headers = {ATTEMPTS: failed_attempts(message), DEFERRALS: deferrals(message) + 1}
    return Outgoing(_copy(message, headers=headers), topology.mailer_retry_queue(delay))


def dead_letter(
    message: AbstractIncomingMessage, topology: Topology, *, kind: str, reason: str, attempts: int
) -> Outgoing:
    """Into the dead-letter queue, with why (`kind` as in the metrics, `reason` for people)."""
    headers = {REASON: reason, FAILURE: kind, ATTEMPTS: attempts, DEAD_LETTERED_AT: utcnow().isoformat()}
    return Outgoing(_copy(message, headers=headers), topology.mailer_dead_letter_queue)


def replay(message: AbstractIncomingMessage, topology: Topology) -> Outgoing:
    """A dead letter back into the mailer queue, its dead-letter headers gone and its retries fresh."""
    headers = {ATTEMPTS: 0, DEFERRALS: 0, REPLAYED_AT: utcnow().isoformat()}
    return Outgoing(_copy(message, drop=_DEAD_LETTER_HEADERS, headers=headers), topology.mailer_queue)


# -- what the dead-letter table keeps of a message ----------------------------------------------


def dead_letter_id(message: Received) -> str:
    return message.message_id or "unknown"


def failure_kind(message: Received) -> str | None:
    """The kind of failure the mailer dead-lettered it for (None when the broker did)."""
    kind = (message.headers or {}).get(FAILURE)
    return kind if isinstance(kind, str) else None


def recorded_reason(message: AbstractIncomingMessage) -> str:
    """Why a message in the dead-letter queue is there: the mailer's reason, or the broker's when
    it dead-lettered the message on its own (the quorum queue's delivery limit)."""
    reason = (message.headers or {}).get(REASON)
    if reason:
        return str(reason)
    deaths = (message.headers or {}).get("x-death")
    death = deaths[0] if isinstance(deaths, list) and deaths else None
    if isinstance(death, dict):
        return (
            f"dead-lettered by RabbitMQ: {death.get('reason', 'unknown reason')!s} in {death.get('queue', 'a queue')!s}"
        )
    return "dead-lettered without a recorded reason"


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


@dataclass(frozen=True)
class DeadLetterRecord:
    """A row of `dead_letters`: the history an operator reads, link tokens redacted."""

    event_id: str
    event_type: str | None
    app_id: str | None
    reason: str
    attempts: int
    payload: dict[str, Any]


def dead_letter_record(message: Received, *, reason: str, attempts: int) -> DeadLetterRecord:
    payload = payload_of(message.body)
    app_id = (message.headers or {}).get("x-app-id") or payload.get("appId")
    return DeadLetterRecord(
        event_id=dead_letter_id(message)[:100],
        event_type=message.type or payload.get("type") or None,
        app_id=str(app_id)[:36] if app_id else None,
        reason=reason,
        attempts=attempts,
        payload=payload,
    )
