"""Reading users for `userreg user show|list|export`: one user named by objectId or identity, pages
in one stable order (oldest first, ties by objectId), and every user of an app in batches. Reads
only; changes go through `registration.operations`. Never a password hash: the API's own
representation (`user_json`) is what leaves, and sessions are counted, never shown by token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.admin.errors import CommandFailed
from userreg.registration.operations import identity_key, user_json
from userreg.shared.db.models import App, SessionToken, User, UserStatus

OBJECT_ID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
# The longest identity or objectId looked up (an identity column holds at most a few hundred characters).
MAX_REFERENCE = 1024
EXPORT_BATCH = 500

ORDER = (User.created_at, User.object_id)


async def find_user(session: AsyncSession, app: App, reference: str) -> User:
    """The app's user whose objectId is `reference`, else the one whose identity it is (compared as
    the app compares identities); `CommandFailed` when there is none."""
    user = None
    if OBJECT_ID.fullmatch(reference):
        user = await session.scalar(select(User).where(User.app_id == app.app_id, User.object_id == reference.upper()))
    if user is None and reference.strip() and len(reference) <= MAX_REFERENCE:
        user = await session.scalar(
            select(User).where(
                User.app_id == app.app_id, User.identity_key == identity_key(reference, app.identity_property)
            )
        )
    if user is None:
        raise CommandFailed(f"app {app.name!r} has no user with objectId or {app.identity_property} {reference!r}")
    return user


async def sessions_of(session: AsyncSession, user: User) -> tuple[int, datetime | None]:
    """How many sessions the user has and when one was last used (never a token or its digest)."""
    count, last_used = (
        await session.execute(
            select(func.count(), func.max(SessionToken.last_used_at)).where(SessionToken.user_id == user.object_id)
        )
    ).one()
    return count, last_used


def identity_of(app: App, user: User) -> str | None:
    value = user.properties.get(app.identity_property)
    return value if isinstance(value, str) and value else None


async def user_details(session: AsyncSession, app: App, user: User) -> dict[str, Any]:
    """The user as the API represents it, and what an operator looks at besides."""
    count, last_used = await sessions_of(session, user)
    return {
        "appId": app.app_id,
        "objectId": user.object_id,
        "identity": identity_of(app, user),
        "status": user.status.value,
        "created": user.created_at,
        "updated": user.updated_at,
        "lastLogin": user.last_login,
        "sessions": {"count": count, "lastUsed": last_used},
        "user": user_json(user),
    }


def _after(position: tuple[datetime, str]) -> ColumnElement[bool]:
    """Users after this (created, objectId) in the order."""
    return tuple_(*ORDER) > tuple_(*(literal(value) for value in position))


def _users_of(app: App, status: UserStatus | None) -> Select[tuple[User]]:
    query = select(User).where(User.app_id == app.app_id)
    if status is not None:
        query = query.where(User.status == status)
    return query.order_by(*ORDER)


async def users_page(
    session: AsyncSession, app: App, *, status: UserStatus | None, limit: int, after: str | None = None, offset: int = 0
) -> list[User]:
    """Up to `limit` users, oldest first: those after the user with objectId `after` in that order
    (a cursor that stays right while users come and go), or past the first `offset`."""
    query = _users_of(app, status)
    if after is not None:
        cursor = None
        if OBJECT_ID.fullmatch(after):
            cursor = (
                await session.execute(select(*ORDER).where(User.app_id == app.app_id, User.object_id == after.upper()))
            ).one_or_none()
        if cursor is None:
            raise CommandFailed(
                f"app {app.name!r} has no user with objectId {after!r} to page on from "
                "(deleted since? page with --offset)"
            )
        query = query.where(_after(tuple(cursor)))
    return list(await session.scalars(query.offset(offset).limit(limit)))


async def user_batches(session: AsyncSession, app: App, *, status: UserStatus | None) -> AsyncIterator[list[User]]:
    """Every user of the app, oldest first, `EXPORT_BATCH` at a time: each batch is a short query
    of its own (keyset paging), so no statement runs for as long as a large app takes to write out."""
    size = EXPORT_BATCH
    query = _users_of(app, status)
    last: tuple[datetime, str] | None = None
    while True:
        batch = list(await session.scalars((query if last is None else query.where(_after(last))).limit(size)))
        # Let go of what was read and end the transaction before the batch is written out: a slow
        # reader of the output (a pipe) must hold no transaction open, and the session's identity
        # map would hold the whole app otherwise.
        session.expunge_all()
        await session.rollback()
        if not batch:
            return
        yield batch
        if len(batch) < size:
            return
        last = (batch[-1].created_at, batch[-1].object_id)
