"""Every SQL statement of the email-change pages (`email_changes.EmailChanges` runs them in a
session of `Repository.session`): the link's rows, and applying it under the unique identity index."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.confirmation_web.repository import can_name_an_app, normalise_app_id
from userreg.shared.db.models import App, EmailChangeToken, User

LinkRows = tuple[App, User, EmailChangeToken]


async def find(session: AsyncSession, app_id: str, token_hash: bytes, *, lock: bool = False) -> LinkRows | None:
    """The app, the user and the email-change link with this token in this app, or None (a used or
    replaced link is gone). With `lock`, the user's row and then the link's are held until the
    transaction ends: every change of the user queues on the user's row first."""
    if not can_name_an_app(app_id):
        return None
    statement = (
        select(App, User, EmailChangeToken)
        .select_from(EmailChangeToken)
        .join(User, User.object_id == EmailChangeToken.user_id)
        .join(App, App.app_id == User.app_id)
        .where(EmailChangeToken.token_hash == token_hash, EmailChangeToken.app_id == normalise_app_id(app_id))
    )
    row = (await session.execute(statement)).first()
    if row is None or not lock:
        return None if row is None else (row[0], row[1], row[2])
    user_id = row[1].object_id
    await session.execute(select(User.object_id).where(User.object_id == user_id).with_for_update())
    row = (await session.execute(statement.with_for_update(of=EmailChangeToken))).first()
    if row is None:
        return None
    await session.refresh(row[1])
    return row[0], row[1], row[2]


async def apply(session: AsyncSession, user_id: str, values: dict[str, Any]) -> bool:
    """Write the user's new columns (`shared.email_changes.applied_values`) and end its email-change
    links; False, with only the links ended, when another user of the app has the identity (the
    unique index decides a race: one user gets the address)."""
    try:
        async with session.begin_nested():
            await session.execute(
                update(User)
                .where(User.object_id == user_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:
        written = False
    else:
        written = True
    await session.execute(delete(EmailChangeToken).where(EmailChangeToken.user_id == user_id))
    return written
