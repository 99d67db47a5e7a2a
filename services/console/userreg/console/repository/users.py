"""The Users pages' reads: an app's users a page at a time (newest first, optionally those whose
identity starts with a text), one user, and how many sessions a user has and when one was last used
(never a token or its digest). Changes go through `registration.operations`, not through here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import EmailChangeToken, SessionToken, User


async def users_page(
    session: AsyncSession, app_id: str, *, identity_like: str | None, offset: int, limit: int
) -> tuple[list[User], int]:
    """A page of the app's users, newest first, and how many there are in all; with
    `identity_like` (a LIKE pattern, escape "\\"), only those whose identity key matches it."""
    where = [User.app_id == app_id]
    if identity_like is not None:
        where.append(User.identity_key.like(identity_like, escape="\\"))
    total = await session.scalar(select(func.count()).select_from(User).where(*where)) or 0
    users = await session.scalars(
        select(User).where(*where).order_by(User.created_at.desc(), User.object_id).offset(offset).limit(limit)
    )
    return list(users), total


async def user_by_id(session: AsyncSession, app_id: str, object_id: str) -> User | None:
    return await session.scalar(select(User).where(User.app_id == app_id, User.object_id == object_id.upper()))


async def sessions_of(session: AsyncSession, user_id: str) -> tuple[int, datetime | None]:
    """How many sessions the user has (those ended by logout, disabling or expiry and pruned are
    gone) and when one of them was last used."""
    count, last_used = (
        await session.execute(
            select(func.count(), func.max(SessionToken.last_used_at)).where(SessionToken.user_id == user_id)
        )
    ).one()
    return count, last_used


async def pending_email_of(session: AsyncSession, user_id: str) -> tuple[str, datetime] | None:
    """The new address the user asked for and has not confirmed yet, with when its link expires
    (a user has at most one; an expired one is still shown until it is pruned)."""
    row = (
        await session.execute(
            select(EmailChangeToken.email, EmailChangeToken.expires_at).where(EmailChangeToken.user_id == user_id)
        )
    ).first()
    return None if row is None else (row[0], row[1])
