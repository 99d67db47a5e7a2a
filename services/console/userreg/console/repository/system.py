"""What the System page reads from the database: the outbox backlog."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import OutboxEvent


async def outbox_backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """Events written but not yet published (a row is deleted once RabbitMQ confirmed it), and
    when the oldest of them was written."""
    count, oldest = (await session.execute(select(func.count(), func.min(OutboxEvent.created_at)))).one()
    return count, oldest
