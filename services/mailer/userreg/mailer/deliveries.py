"""The mailer's reads and writes in PostgreSQL: the app an event belongs to, and the delivery
records that make every email go out at most once however often its event arrives."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from userreg.mailer.policy import TransientFailure
from userreg.shared.db.mail import DeliveryStatus, MailDelivery
from userreg.shared.db.models import App

logger = logging.getLogger(__name__)

# What a database that is away, restarting or overloaded raises (not what a bug raises).
DATABASE_ERRORS = (DBAPIError, PoolTimeout, OSError, asyncio.TimeoutError)
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


# Claims every template of an event in one statement. A row can be claimed when it is new, when
# its last attempt failed, or when its claimant fell silent (claim expired); never once SENT.
_CLAIM = text("""
    INSERT INTO mail_deliveries (event_id, template, app_id, status, attempts, claimed_by, claimed_until)
    SELECT CAST(:event_id AS uuid), template, :app_id, 'SENDING', 1, :owner,
           now() + make_interval(secs => :claim_seconds)
    FROM unnest(CAST(:templates AS text[])) AS template
    ON CONFLICT (event_id, template) DO UPDATE
    SET status = 'SENDING', claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until,
        attempts = mail_deliveries.attempts + 1
    WHERE mail_deliveries.status = 'FAILED'
       OR (mail_deliveries.status = 'SENDING' AND mail_deliveries.claimed_until < now())
    RETURNING template
""")
_STATUSES = text("""
    SELECT template, status FROM mail_deliveries
    WHERE event_id = CAST(:event_id AS uuid) AND template = ANY(CAST(:templates AS text[]))
""")
_MARK_SENT = (
    update(MailDelivery)
    .where(MailDelivery.event_id == bindparam("b_event_id"), MailDelivery.template == bindparam("b_template"))
    .values(status=DeliveryStatus.SENT, sent_at=func.now(), claimed_until=None, last_error=None)
)
_RELEASE = (
    update(MailDelivery)
    .where(MailDelivery.event_id == bindparam("b_event_id"),
           MailDelivery.template.in_(bindparam("b_templates", expanding=True)),
           MailDelivery.status == DeliveryStatus.SENDING, MailDelivery.claimed_by == bindparam("b_owner"))
    .values(status=DeliveryStatus.FAILED, claimed_until=None, last_error=bindparam("b_reason"))
)


class DeliveryLog:
    """Delivery records in `mail_deliveries`, one per (event id, template).

    A mailer claims an email before sending it; the claim lasts `claim_seconds`, longer than one
    send can take, so a live claimant never loses it while a crashed one's claim runs out. The
    database's clock decides expiry: the same for every replica.
    """

    def __init__(self, engine: AsyncEngine, owner: str, claim_seconds: float) -> None:
        # Every statement here is atomic on its own: an AUTOCOMMIT engine saves BEGIN/COMMIT round trips.
        self._engine = engine
        self._owner = owner[:100]
        self._claim_seconds = claim_seconds

    async def claim(self, event_id: str, app_id: str, templates: tuple[str, ...]) -> Claim:
        try:
            async with self._engine.connect() as connection:
                claimed = set((await connection.scalars(_CLAIM, {
                    "event_id": event_id, "app_id": app_id, "owner": self._owner,
                    "claim_seconds": self._claim_seconds, "templates": list(templates)})).all())
                others = [name for name in templates if name not in claimed]
                statuses: dict[str, str] = {}
                if others:
                    statuses = dict((await connection.execute(
                        _STATUSES, {"event_id": event_id, "templates": others})).all())
        except DATABASE_ERRORS as error:
            raise TransientFailure("database", f"cannot claim the delivery: {type(error).__name__}") from error
        return Claim(
            claimed=tuple(name for name in templates if name in claimed),
            already_sent=tuple(name for name in others if statuses.get(name) == DeliveryStatus.SENT.value),
            busy=tuple(name for name in others if statuses.get(name) != DeliveryStatus.SENT.value),
        )

    async def mark_sent(self, event_id: str, template: str) -> None:
        """Record that the SMTP server accepted the email (retried through short database outages)."""
        for pause in (*MARK_SENT_RETRIES, None):
            try:
                async with self._engine.connect() as connection:
                    await connection.execute(_MARK_SENT, {"b_event_id": event_id, "b_template": template})
                return
            except DATABASE_ERRORS as error:
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
            async with self._engine.connect() as connection:
                await connection.execute(_RELEASE, {"b_event_id": event_id, "b_templates": list(templates),
                                                    "b_owner": self._owner, "b_reason": reason})
        except DATABASE_ERRORS as error:
            logger.warning("cannot release the claim on %s (%s); it expires by itself",
                           event_id, type(error).__name__)
