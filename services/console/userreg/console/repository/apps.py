"""The apps: the list (`apps` with the number of their users), their names, one locked for a change."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import App, User


async def apps_with_user_counts(session: AsyncSession) -> list[tuple[App, int]]:
    """Every app, oldest first, with its number of users (guests included), in one statement."""
    users = select(User.app_id, func.count().label("users")).group_by(User.app_id).subquery()
    rows = await session.execute(
        select(App, func.coalesce(users.c.users, 0))
        .outerjoin(users, users.c.app_id == App.app_id)
        .order_by(App.created_at, App.name)
    )
    return [(app, count) for app, count in rows.all()]


async def app_for_update(session: AsyncSession, app_id: str) -> App | None:
    """The app, its row locked until the transaction ends (two operators' changes do not interleave)."""
    return await session.scalar(select(App).where(func.upper(App.app_id) == app_id.upper()).with_for_update())


async def app_names(session: AsyncSession) -> dict[str, str]:
    """Every app's name by its appId, in the order of the names (for the pages' app filters)."""
    rows = await session.execute(select(App.app_id, App.name).order_by(App.name, App.app_id))
    return dict(rows.tuples().all())
