"""The Deliveries page's reads: an app's most recent emails from the mailer's delivery records
(`mail_deliveries`), each with the dead letter of its event if there is one, and the app's dead
letters that never got as far as a delivery record (an event that failed before its emails were
claimed: a broken template, no valid recipient)."""

from __future__ import annotations

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.console.rules.deliveries import DeliveryRow
from userreg.shared.db.mail import DeadLetter, MailDelivery


async def recent_deliveries(session: AsyncSession, app_id: str, limit: int) -> list[DeliveryRow]:
    """The app's newest delivery records (newest first), each with its event's dead letter."""
    event_id = cast(MailDelivery.event_id, String)
    rows = await session.execute(
        select(event_id, MailDelivery.template, MailDelivery.status, MailDelivery.attempts,
               MailDelivery.last_error, MailDelivery.created_at, MailDelivery.sent_at, DeadLetter.event_type, DeadLetter.reason,
               DeadLetter.dead_lettered_at, DeadLetter.replayed_at)
        .outerjoin(DeadLetter, DeadLetter.event_id == event_id)
        .where(MailDelivery.app_id == app_id)
        .order_by(MailDelivery.created_at.desc(), MailDelivery.event_id, MailDelivery.template)
        .limit(limit))
    return [DeliveryRow(*row) for row in rows.all()]


async def dead_letters_without_deliveries(session: AsyncSession, app_id: str, limit: int) -> list[DeliveryRow]:
    """The app's dead letters (newest first) whose event has no delivery record."""
    delivered = select(MailDelivery.event_id).where(cast(MailDelivery.event_id, String) == DeadLetter.event_id)
    rows = await session.execute(
        select(DeadLetter.event_id, DeadLetter.attempts, DeadLetter.dead_lettered_at, DeadLetter.event_type,
               DeadLetter.reason, DeadLetter.replayed_at)
        .where(DeadLetter.app_id == app_id, ~delivered.exists())
        .order_by(DeadLetter.dead_lettered_at.desc()).limit(limit))
    return [DeliveryRow(event_id=event_id, template=None, status=None, attempts=attempts, last_error=None,
                        created_at=at, sent_at=None, event_type=event_type, dead_letter_reason=reason,
                        dead_lettered_at=at, replayed_at=replayed_at)
            for event_id, attempts, at, event_type, reason, replayed_at in rows.all()]
