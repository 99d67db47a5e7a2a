"""Retention: records of sent emails and of replayed dead letters are deleted once they are older
than `MAIL_RETENTION_DAYS`, so the mailer's tables do not grow for ever; so are the mailbox
limits' records once they are a day old, guest users never converted once they are older than
their app's `guestTtl` (the README's Security section: a guest costs no hash, so a client could make them for ever),
sessions unused for longer than their app's `sessionTtl`, and password-reset links past their
expiry (docs/api.md, Sessions and password recovery: both have ended already; nothing else deletes the rows
of those never used).

A SENT record only has to outlive the redeliveries of its event (seconds to hours), and a
replayed dead letter is history. Pending claims, failed attempts and dead letters still waiting
for a replay are never pruned. Every replica prunes; a DELETE is idempotent, so that is safe.
(The DELETEs are `repository.prune`.)
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.mailer.repository import prune
from userreg.shared.db.errors import RETRYABLE_DATABASE_ERRORS

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0


async def prune_periodically(
    engine: AsyncEngine, retention_days: int, interval_seconds: float = PRUNE_INTERVAL_SECONDS
) -> None:
    """Prune now and then every `interval_seconds`, until cancelled; a database that is away is
    tried again at the next round. Anything else ends it with its exception (the mailer runs it
    under `Supervised`, which starts it again after a back-off)."""
    while True:
        try:
            pruned = await prune(engine, retention_days)
        except RETRYABLE_DATABASE_ERRORS as error:
            logger.warning("mail retention: pruning failed (%s); trying again later", type(error).__name__)
        else:
            if pruned.deliveries or pruned.dead_letters:
                logger.info(
                    "mail retention: pruned %d sent-email records and %d replayed dead letters older than %d days",
                    pruned.deliveries,
                    pruned.dead_letters,
                    retention_days,
                )
            if pruned.guests:
                logger.info("retention: removed %d guest users older than their app's guestTtl", pruned.guests)
            if pruned.sessions or pruned.password_resets:
                logger.info(
                    "retention: removed %d sessions unused for longer than their app's sessionTtl "
                    "and %d expired password-reset links",
                    pruned.sessions,
                    pruned.password_resets,
                )
        await asyncio.sleep(interval_seconds)
