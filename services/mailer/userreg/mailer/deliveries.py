"""The mailer's reads and writes in PostgreSQL: the app an event belongs to, and the delivery
records that make every email go out at most once however often its event arrives."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from userreg.mailer.policy import TransientFailure
from userreg.shared.db.mail import DeliveryStatus, MailDelivery
from userreg.shared.db.models import App

logger = logging.getLogger(__name__)

# After the SMTP server accepted an email, recording that is worth a few tries: giving up means the
# event is redelivered and, once the claim expired, the email is sent a second time.
MARK_SENT_RETRIES = (0.1, 0.5, 1, 2, 5, 10)


@dataclass(frozen=True)
class AppInfo:
    app_id: str
    name: str
    welcome_email_enabled: bool


async def load_app(session: AsyncSession, app_id: str) -> AppInfo | None:
    """The app an event names. Events carry the exact appId the services wrote, so this is a
    primary-key lookup (unlike `shared.apps.get_app`, which accepts a client's spelling)."""
    row = (await session.execute(
        select(App.app_id, App.name, App.welcome_email_enabled).where(App.app_id == app_id)
    )).first()
    return None if row is None else AppInfo(*row)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an event's emails: ours to send now, sent before, or being sent
    right now by another mailer (whose claim has not expired)."""

    claimed: tuple[str, ...]
    already_sent: tuple[str, ...]
    busy: tuple[str, ...]


class DeliveryLog:
    """Delivery records in `mail_deliveries`, one per (event id, template).

    A mailer claims an email before sending it; the claim lasts `claim_seconds`, longer than one
    send can take, so a live claimant never loses it while a crashed one's claim runs out.
    """

    def __init__(self, engine: AsyncEngine, owner: str, claim_seconds: float) -> None:
        self._engine = engine
        self._owner = owner[:100]
        self._claim = timedelta(seconds=claim_seconds)

    async def claim(self, event_id: str, app_id: str, templates: tuple[str, ...]) -> Claim:
        # The database's clock decides when a claim expires: the same for every mailer replica.
        claimed_until = func.now() + literal(self._claim)
        statement = insert(MailDelivery).values([
            {"event_id": event_id, "template": name, "app_id": app_id, "status": DeliveryStatus.SENDING,
             "attempts": 1, "claimed_by": self._owner, "claimed_until": claimed_until}
            for name in templates
        ])
        statement = statement.on_conflict_do_update(
            index_elements=[MailDelivery.event_id, MailDelivery.template],
            set_={
                "status": DeliveryStatus.SENDING,
                "claimed_by": statement.excluded.claimed_by,
                "claimed_until": statement.excluded.claimed_until,
                "attempts": MailDelivery.attempts + 1,
            },
            where=or_(
                MailDelivery.status == DeliveryStatus.FAILED,
                and_(MailDelivery.status == DeliveryStatus.SENDING, MailDelivery.claimed_until < func.now()),
            ),
        ).returning(MailDelivery.template)
        try:
            async with self._engine.begin() as connection:
                claimed = set((await connection.scalars(statement)).all())
                others = [name for name in templates if name not in claimed]
                statuses: dict[str, DeliveryStatus] = {}
                if others:
                    statuses = dict((await connection.execute(
                        select(MailDelivery.template, MailDelivery.status)
                        .where(MailDelivery.event_id == event_id, MailDelivery.template.in_(others))
                    )).all())
        except (SQLAlchemyError, OSError) as error:
            raise TransientFailure("database", f"cannot claim the delivery: {type(error).__name__}") from error
        return Claim(
            claimed=tuple(name for name in templates if name in claimed),
            already_sent=tuple(name for name in others if statuses.get(name) is DeliveryStatus.SENT),
            busy=tuple(name for name in others if statuses.get(name) is not DeliveryStatus.SENT),
        )

    async def mark_sent(self, event_id: str, template: str) -> None:
        """Record that the SMTP server accepted the email (retried through short database outages)."""
        statement = (
            update(MailDelivery)
            .where(MailDelivery.event_id == event_id, MailDelivery.template == template)
            .values(status=DeliveryStatus.SENT, sent_at=func.now(), claimed_until=None, last_error=None)
        )
        for pause in (*MARK_SENT_RETRIES, None):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(statement)
                return
            except (SQLAlchemyError, OSError) as error:
                if pause is None:
                    raise TransientFailure("database", "cannot record a sent email: "
                                                       f"{type(error).__name__}") from error
                logger.warning("recording the sent email %s/%s failed (%s); retrying in %ss",
                               event_id, template, type(error).__name__, pause)
                await asyncio.sleep(pause)

    async def release(self, event_id: str, templates: tuple[str, ...], reason: str) -> None:
        """Give up our claim after a failed attempt, so the next delivery of the event may claim it
        at once. Best effort: if this fails too, the claim simply expires."""
        if not templates:
            return
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(MailDelivery)
                    .where(MailDelivery.event_id == event_id, MailDelivery.template.in_(templates),
                           MailDelivery.status == DeliveryStatus.SENDING,
                           MailDelivery.claimed_by == self._owner)
                    .values(status=DeliveryStatus.FAILED, claimed_until=None, last_error=reason)
                )
        except (SQLAlchemyError, OSError) as error:
            logger.warning("cannot release the claim on %s (%s); it expires by itself",
                           event_id, type(error).__name__)
