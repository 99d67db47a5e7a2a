"""What the Deliveries page says of an email: its state (sent, sending, retrying, dead-lettered)
and the reason, from the mailer's delivery record and its event's dead letter. Pure functions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from userreg.shared.db.mail import DeliveryStatus

SENT = "sent"
SENDING = "sending"
RETRYING = "retrying"
DEAD_LETTERED = "dead-lettered"
RECENT = 50


@dataclass(frozen=True)
class DeliveryRow:
    """An email's delivery record (or, without one, its event's dead letter) as the repository reads it."""

    event_id: str
    template: str | None
    status: DeliveryStatus | None
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    # The event's dead letter, when it has one.
    event_type: str | None
    dead_letter_reason: str | None
    dead_lettered_at: datetime | None
    replayed_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    event_id: str
    # The email's template; None for a dead letter that never got as far as its emails.
    template: str | None
    state: str
    reason: str | None
    attempts: int
    at: datetime
    # The event's type when it was dead-lettered (the delivery record does not keep it).
    event_type: str | None = None


def is_dead(row: DeliveryRow) -> bool:
    """The event waits in the dead-letter queue: dead-lettered, and not replayed since."""
    return row.dead_lettered_at is not None and (row.replayed_at is None or row.replayed_at < row.dead_lettered_at)


def delivery_of(row: DeliveryRow) -> Delivery:
    """A sent email is sent whatever became of its event later (an event may send two emails and
    die on the second); one not sent is dead-lettered while its event is, else being sent (a
    mailer holds it) or retrying (its last attempt failed: the event comes back)."""
    if row.status is DeliveryStatus.SENT:
        state, reason, at = SENT, None, row.sent_at or row.created_at
    elif is_dead(row):
        state, reason, at = DEAD_LETTERED, row.dead_letter_reason, row.dead_lettered_at or row.created_at
    elif row.status is DeliveryStatus.SENDING:
        state, reason, at = SENDING, None, row.created_at
    else:
        replayed = f"replayed after: {row.dead_letter_reason}" if row.dead_letter_reason else None
        state, reason, at = RETRYING, row.last_error or replayed, row.created_at
    return Delivery(row.event_id, row.template, state, reason, row.attempts, at, row.event_type)


def recent(deliveries: Iterable[DeliveryRow], dead_letters: Iterable[DeliveryRow],
           limit: int = RECENT) -> list[Delivery]:
    """Both kinds of rows as the page lists them: newest first, at most `limit`."""
    shown = [delivery_of(row) for row in (*deliveries, *dead_letters)]
    return sorted(shown, key=lambda delivery: delivery.at, reverse=True)[:limit]
