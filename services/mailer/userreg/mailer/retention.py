"""Retention: records of sent emails and of replayed dead letters are deleted once they are older
than `MAIL_RETENTION_DAYS`, so the mailer's tables do not grow for ever; so are the mailbox
limits' records once they are a day old, and guest users never converted once they are older than
their app's `guestTtl` (SPEC §3.8: a guest costs no hash, so a client could make them for ever).

A SENT record only has to outlive the redeliveries of its event (seconds to hours), and a
replayed dead letter is history. Pending claims, failed attempts and dead letters still waiting
for a replay are never pruned. Every replica prunes; a DELETE is idempotent, so that is safe.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func
from sqlalchemy.ext.asyncio import AsyncEngine
from userreg.mailer.deliveries import DATABASE_ERRORS
from userreg.shared.confirmations import MAILBOX_DAY
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.db.models import App, MailboxEmail, User, UserStatus

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    dead_letters: int
    mailbox_emails: int = 0
    guests: int = 0


async def prune(engine: AsyncEngine, retention_days: int) -> Pruned:
    """Delete what is older than the retention; returns how many rows of each table went."""
    cutoff = func.now() - timedelta(days=retention_days)
    async with engine.begin() as connection:
        deliveries = await connection.execute(
            delete(MailDelivery).where(MailDelivery.status == DeliveryStatus.SENT, MailDelivery.sent_at < cutoff))
        dead_letters = await connection.execute(
            delete(DeadLetter).where(DeadLetter.replayed_at.is_not(None), DeadLetter.replayed_at < cutoff))
        mailbox_emails = await connection.execute(
            delete(MailboxEmail).where(MailboxEmail.sent_at < func.now() - MAILBOX_DAY))
        # A guest's sessions and links go with it (ON DELETE CASCADE).
        guests = await connection.execute(delete(User).where(
            User.status == UserStatus.GUEST, User.app_id == App.app_id,
            User.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, App.guest_ttl)))
    return Pruned(deliveries.rowcount, dead_letters.rowcount, mailbox_emails.rowcount, guests.rowcount)


async def prune_periodically(engine: AsyncEngine, retention_days: int,
                             interval_seconds: float = PRUNE_INTERVAL_SECONDS) -> None:
    """Prune now and then every `interval_seconds`, until cancelled; a database that is away is
    tried again at the next round. Anything else ends it with its exception (the mailer runs it
    under `Supervised`, which starts it again after a back-off)."""
    while True:
        try:
            pruned = await prune(engine, retention_days)
        except DATABASE_ERRORS as error:
            logger.warning("mail retention: pruning failed (%s); trying again later", type(error).__name__)
        else:
            if pruned.deliveries or pruned.dead_letters:
                logger.info("mail retention: pruned %d sent-email records and %d replayed dead letters "
                            "older than %d days", pruned.deliveries, pruned.dead_letters, retention_days)
            if pruned.guests:
                logger.info("retention: removed %d guest users older than their app's guestTtl", pruned.guests)
        await asyncio.sleep(interval_seconds)
