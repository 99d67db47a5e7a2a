"""Every SQL statement about sessions after they were opened (the rest of the service's SQL is in
the package's `__init__`): a `user-token`'s last use, ending one
session, and a user's sessions listed and ended (`accounts.Accounts` runs them on the connections
`Repository.connection` hands out). A session is opened with its user's login or guest row, in
`repository.py`; tokens are only ever looked up by their SHA-256 digest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from userreg.registration.repository.statements import table_of
from userreg.shared.db.models import SessionToken

_SESSIONS = table_of(SessionToken)


async def record_use(connection: AsyncConnection, token_hash: bytes, at: datetime) -> None:
    """The session's last use is `at` (never earlier than what another request recorded)."""
    await connection.execute(
        update(_SESSIONS)
        .where(_SESSIONS.c.token_hash == token_hash, _SESSIONS.c.last_used_at < at)
        .values(last_used_at=at)
    )


async def end(connection: AsyncConnection, app_id: str, token_hash: bytes) -> datetime | None:
    """Delete the app's session with this token; when it was last used, None when there was none
    (an expired one is deleted too: it was over anyway)."""
    return await connection.scalar(
        delete(_SESSIONS)
        .where(_SESSIONS.c.token_hash == token_hash, _SESSIONS.c.app_id == app_id)
        .returning(_SESSIONS.c.last_used_at)
    )


async def of_user(connection: AsyncConnection, user_id: str) -> list[tuple[datetime, datetime]]:
    """(created, last used) of each of the user's sessions, oldest first."""
    rows = await connection.execute(
        select(_SESSIONS.c.created_at, _SESSIONS.c.last_used_at)
        .where(_SESSIONS.c.user_id == user_id)
        .order_by(_SESSIONS.c.created_at)
    )
    return [(created, used) for created, used in rows]


async def end_all_of_user(connection: AsyncConnection, user_id: str) -> int:
    """Delete every session of the user; how many there were."""
    return (await connection.execute(delete(_SESSIONS).where(_SESSIONS.c.user_id == user_id))).rowcount


async def user_of(connection: AsyncConnection, app_id: str, token_hash: bytes) -> tuple[str, datetime] | None:
    """(objectId of its user, last use) of the app's session with this token; None when there is none."""
    row = (
        await connection.execute(
            select(_SESSIONS.c.user_id, _SESSIONS.c.last_used_at).where(
                _SESSIONS.c.token_hash == token_hash, _SESSIONS.c.app_id == app_id
            )
        )
    ).first()
    return None if row is None else (row.user_id, row.last_used_at)
