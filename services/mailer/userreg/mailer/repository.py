"""All SQL of the mailer: the app an event names, the delivery records that make every email go
out at most once (claims, their leases, "sent"), the dead-letter rows, and the retention deletes
(the mailer's own records, and the deployment's expired sessions, reset links and old guests).

The delivery statements run on the `autocommit` engine (`userreg.shared.db`): each is atomic on its
own, so no BEGIN/COMMIT round trips (through a transaction pooler, each is a transaction of its
own: hence `engine.begin()` everywhere); several emails' claims or "sent" records go in one
statement (`delivery_log.py` batches them).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from userreg.mailer.envelope import DeadLetterRecord
from userreg.mailer.rules.leases import DeliveryKey
from userreg.shared.confirmations import MAILBOX_DAY
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.db.models import App, MailboxEmail, PasswordResetToken, SessionToken, User, UserStatus

# -- apps ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppInfo:
    app_id: str
    name: str
    welcome_email_enabled: bool


async def load_app(session: AsyncSession, app_id: str) -> AppInfo | None:
    """The app an event names. Events carry the exact appId the services wrote, so this is a
    primary-key lookup (unlike `shared.apps.get_app`, which accepts a client's spelling)."""
    row = (
        await session.execute(select(App.app_id, App.name, App.welcome_email_enabled).where(App.app_id == app_id))
    ).first()
    return None if row is None else AppInfo(*row)


# -- delivery records ------------------------------------------------------------------------------

# Claims many emails in one statement. A row can be claimed when it is new, when its last attempt
# failed, or when its claimant fell silent (claim expired); never once SENT.
_CLAIM = text("""
    INSERT INTO mail_deliveries (event_id, template, app_id, status, attempts, claimed_by, claimed_until)
    SELECT wanted.event_id, wanted.template, wanted.app_id, 'SENDING', 1, :owner,
           now() + make_interval(secs => :claim_seconds)
    FROM unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[]), CAST(:app_ids AS text[]))
         AS wanted(event_id, template, app_id)
    ON CONFLICT (event_id, template) DO UPDATE
    SET status = 'SENDING', claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until,
        attempts = mail_deliveries.attempts + 1
    WHERE mail_deliveries.status = 'FAILED'
       OR (mail_deliveries.status = 'SENDING' AND mail_deliveries.claimed_until < now())
    RETURNING CAST(event_id AS text), template
""")
_STATUSES = text("""
    SELECT CAST(d.event_id AS text), d.template, CAST(d.status AS text) FROM mail_deliveries AS d
    JOIN unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[])) AS wanted(event_id, template)
      ON d.event_id = wanted.event_id AND d.template = wanted.template
""")
_MARK_SENT = text("""
    UPDATE mail_deliveries AS d
    SET status = 'SENT', sent_at = now(), claimed_until = NULL, last_error = NULL
    FROM unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[])) AS sent(event_id, template)
    WHERE d.event_id = sent.event_id AND d.template = sent.template
""")
# Renews the claims a mailer holds (it lists them: a claim it stopped working on must lapse, not be
# renewed for as long as the mailer lives). Returns those still ours.
_RENEW = text("""
    UPDATE mail_deliveries AS d SET claimed_until = now() + make_interval(secs => :claim_seconds)
    FROM unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[])) AS held(event_id, template)
    WHERE d.event_id = held.event_id AND d.template = held.template
      AND d.claimed_by = :owner AND d.status = 'SENDING'
    RETURNING CAST(d.event_id AS text), d.template
""")
_RELEASE = (
    update(MailDelivery)
    .where(
        MailDelivery.event_id == bindparam("b_event_id"),
        MailDelivery.template.in_(bindparam("b_templates", expanding=True)),
        MailDelivery.status == DeliveryStatus.SENDING,
        MailDelivery.claimed_by == bindparam("b_owner"),
    )
    .values(status=DeliveryStatus.FAILED, claimed_until=None, last_error=bindparam("b_reason"))
)


def _keys(keys: list[DeliveryKey]) -> dict[str, list[str]]:
    return {"event_ids": [event_id for event_id, _ in keys], "templates": [template for _, template in keys]}


@dataclass(frozen=True)
class ClaimedRows:
    claimed: set[DeliveryKey]
    # The status of each row that was not claimed (a row that does not exist is not in it).
    statuses: dict[DeliveryKey, str]
    # When the claiming statement was sent (monotonic): the leases it set count from no earlier.
    started: float


async def claim_deliveries(
    engine: AsyncEngine, rows: dict[DeliveryKey, str], *, owner: str, claim_seconds: float
) -> ClaimedRows:
    """Claim these rows (each with its app id, in lock order) for `owner`; then, for those another
    mailer holds or that were sent, read their statuses, on the same connection."""
    keys = list(rows)
    async with engine.begin() as connection:
        started = time.monotonic()
        claimed = set(
            (
                await connection.execute(
                    _CLAIM,
                    {
                        "owner": owner,
                        "claim_seconds": claim_seconds,
                        **_keys(keys),
                        "app_ids": [rows[key] for key in keys],
                    },
                )
            )
            .tuples()
            .all()
        )
        unclaimed = [key for key in keys if key not in claimed]
        statuses: dict[DeliveryKey, str] = {}
        if unclaimed:
            found = await connection.execute(_STATUSES, _keys(unclaimed))
            statuses = {(event_id, template): status for event_id, template, status in found.tuples()}
    return ClaimedRows(claimed=claimed, statuses=statuses, started=started)


async def renew_claims(
    engine: AsyncEngine, keys: list[DeliveryKey], *, owner: str, claim_seconds: float
) -> tuple[set[DeliveryKey], float]:
    """Renew the leases of these claims where they are still `owner`'s; returns those renewed and
    when the statement was sent (monotonic)."""
    async with engine.begin() as connection:
        started = time.monotonic()
        renewed = set(
            (await connection.execute(_RENEW, {"owner": owner, "claim_seconds": claim_seconds, **_keys(keys)}))
            .tuples()
            .all()
        )
    return renewed, started


async def mark_sent(engine: AsyncEngine, keys: list[DeliveryKey]) -> None:
    async with engine.begin() as connection:
        await connection.execute(_MARK_SENT, _keys(keys))


async def release_claims(
    engine: AsyncEngine, event_id: str, templates: tuple[str, ...], *, owner: str, reason: str
) -> None:
    """Mark `owner`'s claims on these emails FAILED with `reason`: free to claim again at once."""
    async with engine.begin() as connection:
        await connection.execute(
            _RELEASE, {"b_event_id": event_id, "b_templates": list(templates), "b_owner": owner, "b_reason": reason}
        )


# -- dead letters ----------------------------------------------------------------------------------


async def record_dead_letter(engine: AsyncEngine, record: DeadLetterRecord) -> None:
    """Write (or refresh, when it died again after a replay) the dead letter's row."""
    statement = insert(DeadLetter).values(asdict(record))
    statement = statement.on_conflict_do_update(
        index_elements=[DeadLetter.event_id],
        set_={
            "reason": statement.excluded.reason,
            "attempts": statement.excluded.attempts,
            "payload": statement.excluded.payload,
            "dead_lettered_at": func.now(),
            "times_dead_lettered": DeadLetter.times_dead_lettered + 1,
        },
    )
    async with engine.begin() as connection:
        await connection.execute(statement)


async def record_dead_letter_if_missing(engine: AsyncEngine, record: DeadLetterRecord) -> None:
    """Write the row of a dead letter that has none (the broker parked it, or recording failed)."""
    async with engine.begin() as connection:
        await connection.execute(
            insert(DeadLetter).values(asdict(record)).on_conflict_do_nothing(index_elements=[DeadLetter.event_id])
        )


async def find_dead_letters(
    engine: AsyncEngine, event_ids: list[str], *, others: int = 0
) -> tuple[dict[str, Any], list[Any]]:
    """The rows of these dead letters by event id; and, with `others`, up to that many rows of
    other dead letters (replayed earlier), oldest first."""
    table = DeadLetter.__table__
    async with engine.begin() as connection:
        found = await connection.execute(select(table).where(table.c.event_id.in_(event_ids)))
        rows = {row.event_id: row for row in found}
        history: list[Any] = []
        if others:
            history = list(
                await connection.execute(
                    select(table)
                    .where(table.c.event_id.not_in(event_ids))
                    .order_by(table.c.dead_lettered_at)
                    .limit(others)
                )
            )
    return rows, history


async def mark_replayed(engine: AsyncEngine, event_ids: list[str]) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(DeadLetter).where(DeadLetter.event_id.in_(event_ids)).values(replayed_at=func.now())
        )


# -- retention -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    deliveries: int
    dead_letters: int
    mailbox_emails: int = 0
    guests: int = 0
    sessions: int = 0
    password_resets: int = 0


def _seconds(column: Any) -> Any:
    """An interval of `column` seconds (an app's TTL setting), in SQL."""
    return func.make_interval(0, 0, 0, 0, 0, 0, column)


async def prune(engine: AsyncEngine, retention_days: int) -> Pruned:
    """Delete what is older than the retention (see `retention.py`), in one transaction; returns
    how many rows of each table went."""
    cutoff = func.now() - timedelta(days=retention_days)
    async with engine.begin() as connection:
        deliveries = await connection.execute(
            delete(MailDelivery).where(MailDelivery.status == DeliveryStatus.SENT, MailDelivery.sent_at < cutoff)
        )
        dead_letters = await connection.execute(
            delete(DeadLetter).where(DeadLetter.replayed_at.is_not(None), DeadLetter.replayed_at < cutoff)
        )
        mailbox_emails = await connection.execute(
            delete(MailboxEmail).where(MailboxEmail.sent_at < func.now() - MAILBOX_DAY)
        )
        # A guest's sessions and links go with it (ON DELETE CASCADE).
        guests = await connection.execute(
            delete(User).where(
                User.status == UserStatus.GUEST,
                User.app_id == App.app_id,
                User.created_at < func.now() - _seconds(App.guest_ttl),
            )
        )
        # A session ends sessionTtl seconds after its last use (docs/api.md, Sessions and password recovery),
        # a reset link at its expiry: the rows of ended ones let no one in, they are only dead weight.
        sessions = await connection.execute(
            delete(SessionToken).where(
                SessionToken.app_id == App.app_id, SessionToken.last_used_at < func.now() - _seconds(App.session_ttl)
            )
        )
        password_resets = await connection.execute(
            delete(PasswordResetToken).where(PasswordResetToken.expires_at < func.now())
        )
    return Pruned(
        deliveries.rowcount,
        dead_letters.rowcount,
        mailbox_emails.rowcount,
        guests.rowcount,
        sessions.rowcount,
        password_resets.rowcount,
    )
