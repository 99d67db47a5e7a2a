"""Finding the app an operator names, by appId or by its (unique) name."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.admin.errors import CommandFailed
from userreg.shared.apps import AppNotFound, get_app
from userreg.shared.db.models import App, User


async def find_app(session: AsyncSession, ref: str, *, for_update: bool = False) -> App:
    """The app whose appId is `ref` (any case), else the one app named `ref`."""
    try:
        app = await get_app(session, ref)
    except AppNotFound:
        named = list(await session.scalars(select(App).where(App.name == ref).order_by(App.created_at)))
        if not named:
            raise CommandFailed(f"no app with appId or name {ref!r} (see `userreg app list`)") from None
        if len(named) > 1:
            ids = ", ".join(app.app_id for app in named)
            raise CommandFailed(f"{len(named)} apps are named {ref!r}; give the appId: {ids}") from None
        app = named[0]
    if for_update:
        await session.execute(select(App.app_id).where(App.app_id == app.app_id).with_for_update())
        await session.refresh(app)
    return app


async def count_users(session: AsyncSession, app_id: str) -> int:
    return await session.scalar(select(func.count()).select_from(User).where(User.app_id == app_id)) or 0
