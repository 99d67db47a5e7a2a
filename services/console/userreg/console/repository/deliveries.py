"""The Deliveries pages' reads: emails from the mailer's delivery records (`mail_deliveries`),
each with the dead letter of its event if there is one, together with the dead letters that never
got as far as a delivery record (an event that failed before its emails were claimed: a broken
template, no valid recipient); newest first, filtered by app and by state, a page at a time.

An email's state is decided here, in SQL, so that the pages can filter on it: sent once the SMTP
server accepted it, whatever became of its event later (an event may send two emails and die on
the second); else dead-lettered while its event waits in the dead letters (dead-lettered and not
replayed since); else sending while a mailer holds it; else retrying (its last attempt failed, or
its event was replayed: the event comes back)."""

from __future__ import annotations

from sqlalchemy import String, and_, case, cast, func, literal, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.console.rules.deliveries import (
    DEAD_LETTERED,
    PAGE_SIZE,
    RETRYING,
    SENDING,
    SENT,
    DeliveryQuery,
    DeliveryRow,
)
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery

_DEAD = and_(
    DeadLetter.dead_lettered_at.is_not(None),
    or_(DeadLetter.replayed_at.is_(None), DeadLetter.replayed_at < DeadLetter.dead_lettered_at),
)
# The address of the user the event was about (the dead letter keeps the event, tokens redacted).
_RECIPIENT = DeadLetter.payload["user"]["email"].astext


def _emails(app_id: str | None):
    """Delivery records, each with its event's dead letter."""
    event_id = cast(MailDelivery.event_id, String)
    state = case(
        (MailDelivery.status == DeliveryStatus.SENT, literal(SENT)),
        (_DEAD, literal(DEAD_LETTERED)),
        (MailDelivery.status == DeliveryStatus.SENDING, literal(SENDING)),
        else_=literal(RETRYING),
    )
    at = func.coalesce(
        case((MailDelivery.status == DeliveryStatus.SENT, MailDelivery.sent_at), (_DEAD, DeadLetter.dead_lettered_at)),
        MailDelivery.created_at,
    )
    query = select(
        event_id.label("event_id"),
        MailDelivery.app_id.label("app_id"),
        MailDelivery.template.label("template"),
        state.label("state"),
        MailDelivery.attempts,
        MailDelivery.last_error,
        DeadLetter.reason.label("dead_letter_reason"),
        at.label("at"),
        DeadLetter.event_type,
        _RECIPIENT.label("recipient"),
    ).outerjoin(DeadLetter, DeadLetter.event_id == event_id)
    return query.where(MailDelivery.app_id == app_id) if app_id is not None else query


def _dead_letters_without_emails(app_id: str | None):
    delivered = select(MailDelivery.event_id).where(cast(MailDelivery.event_id, String) == DeadLetter.event_id)
    state = case((_DEAD, literal(DEAD_LETTERED)), else_=literal(RETRYING))
    query = select(
        DeadLetter.event_id,
        DeadLetter.app_id,
        cast(null(), String).label("template"),
        state.label("state"),
        DeadLetter.attempts,
        cast(null(), String).label("last_error"),
        DeadLetter.reason.label("dead_letter_reason"),
        DeadLetter.dead_lettered_at.label("at"),
        DeadLetter.event_type,
        _RECIPIENT.label("recipient"),
    ).where(~delivered.exists())
    return query.where(DeadLetter.app_id == app_id) if app_id is not None else query


async def deliveries(session: AsyncSession, wanted: DeliveryQuery) -> list[DeliveryRow]:
    """The page of emails `wanted` asks for, newest first: up to PAGE_SIZE + 1 rows (one more
    than a page says whether there is a next page)."""
    emails = union_all(_emails(wanted.app_id), _dead_letters_without_emails(wanted.app_id)).subquery()
    query = select(emails)
    if wanted.state is not None:
        query = query.where(emails.c.state == wanted.state)
    rows = await session.execute(
        query.order_by(emails.c.at.desc(), emails.c.event_id, emails.c.template.nulls_first())
        .offset(wanted.offset)
        .limit(PAGE_SIZE + 1)
    )
    return [DeliveryRow(**row) for row in rows.mappings().all()]
