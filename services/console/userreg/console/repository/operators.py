"""Operators' sign-ins and sessions (`operators`, `operator_sessions`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import Operator, OperatorSession


async def session_operator(
    session: AsyncSession, token_hash: bytes, idle_since: datetime
) -> tuple[OperatorSession, Operator] | None:
    """The live session of this token digest with its operator (None when unknown or idle too long)."""
    row = (
        await session.execute(
            select(OperatorSession, Operator)
            .join(Operator, Operator.operator_id == OperatorSession.operator_id)
            .where(OperatorSession.token_hash == token_hash, OperatorSession.last_used_at > idle_since)
        )
    ).first()
    return None if row is None else (row[0], row[1])


async def touch_session(session: AsyncSession, token_hash: bytes, now: datetime) -> None:
    await session.execute(
        update(OperatorSession).where(OperatorSession.token_hash == token_hash).values(last_used_at=now)
    )


def add_session(session: AsyncSession, operator_id: str, token_hash: bytes, now: datetime) -> None:
    session.add(OperatorSession(token_hash=token_hash, operator_id=operator_id, created_at=now, last_used_at=now))


async def delete_session(session: AsyncSession, token_hash: bytes) -> None:
    await session.execute(delete(OperatorSession).where(OperatorSession.token_hash == token_hash))


async def delete_idle_sessions(session: AsyncSession, idle_since: datetime) -> None:
    """Forget sessions that are over (run at each sign-in: the table stays as small as its use)."""
    await session.execute(delete(OperatorSession).where(OperatorSession.last_used_at <= idle_since))


async def record_sign_in(session: AsyncSession, operator_id: str, now: datetime, new_password_hash: str | None) -> None:
    """`last_sign_in_at`, and the password's new hash when its parameters changed since."""
    values: dict[str, object] = {"last_sign_in_at": now}
    if new_password_hash is not None:
        values["password_hash"] = new_password_hash
    await session.execute(update(Operator).where(Operator.operator_id == operator_id).values(**values))
