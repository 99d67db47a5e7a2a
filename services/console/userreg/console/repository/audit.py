"""What the audit log page reads besides `shared.audit.entries`: the apps' names."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import App


async def app_names(session: AsyncSession) -> dict[str, str]:
    """Every app's name by its appId, in the order of the names."""
    rows = await session.execute(select(App.app_id, App.name).order_by(App.name, App.app_id))
    return {app_id: name for app_id, name in rows.all()}
