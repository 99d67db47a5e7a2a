"""The SQL confirmation-web runs. Opening a link is one indexed query (token hash → user → app),
confirming is one guarded UPDATE; both are plain functions over a connection or session."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from userreg.confirmation_web.rules import Link
from userreg.shared.db.models import App, ConfirmationToken, User, UserStatus

# The hot path: the token's primary key, then the user's and the app's primary keys. Only the
# columns a page needs; SQLAlchemy caches the compiled form of this one statement.
_LOOKUP = (
    select(
        App.app_id, App.name, App.identity_property, App.confirm_on_get, App.email_confirmation_required,
        User.object_id, User.status, User.properties, ConfirmationToken.expires_at,
    )
    .select_from(ConfirmationToken)
    .join(User, User.object_id == ConfirmationToken.user_id)
    .join(App, App.app_id == User.app_id)
    .where(ConfirmationToken.token_hash == bindparam("token_hash"),
           ConfirmationToken.app_id == bindparam("app_id"))
)

_APP_NAME = select(App.app_id, App.name).where(App.app_id == bindparam("app_id"))


def normalise_app_id(app_id: str) -> str:
    """AppIds are stored as uppercase GUIDs; a link typed in lower case still works."""
    return app_id.upper()


async def find_link(connection: AsyncConnection | AsyncSession, app_id: str, token_hash: bytes) -> Link | None:
    """The link with this token hash in this app, or None (a token of another app is not found)."""
    row = (await connection.execute(_LOOKUP, {"token_hash": token_hash,
                                              "app_id": normalise_app_id(app_id)})).first()
    if row is None:
        return None
    return _link(row)


def _link(row: Any) -> Link:
    return Link(
        app_id=row.app_id,
        app_name=row.name,
        identity_property=row.identity_property,
        confirm_on_get=row.confirm_on_get,
        confirmation_required=row.email_confirmation_required,
        user_id=row.object_id,
        status=row.status,
        expires_at=row.expires_at,
        properties=row.properties or {},
    )


async def find_app_name(connection: AsyncConnection | AsyncSession, app_id: str) -> tuple[str, str] | None:
    """(appId, name) of the app in a link's path, so that even a broken link shows whose it is."""
    if len(app_id) > 36:
        return None
    row = (await connection.execute(_APP_NAME, {"app_id": normalise_app_id(app_id)})).first()
    return None if row is None else (row.app_id, row.name)


async def confirm_user(session: AsyncSession, app_id: str, token_hash: bytes, now: datetime) -> User | None:
    """Confirm the pending user this unexpired token belongs to; returns the user if THIS call
    changed the status, None otherwise (unknown or expired token, or not pending any more).

    One guarded UPDATE: concurrent confirmations queue on the row lock, and every one but the
    first finds the status already changed, so the status changes once and only the winner goes
    on to write the `user.confirmed` event in the same transaction.
    """
    token_is_valid = exists().where(
        ConfirmationToken.token_hash == token_hash,
        ConfirmationToken.app_id == normalise_app_id(app_id),
        ConfirmationToken.user_id == User.object_id,
        ConfirmationToken.expires_at > now,
    )
    statement = (
        update(User)
        .where(User.status == UserStatus.EMAIL_CONFIRMATION_PENDING, token_is_valid)
        .values(status=UserStatus.ENABLED, updated_at=now)
        .returning(User)
        .execution_options(synchronize_session=False)
    )
    return (await session.scalars(statement)).one_or_none()


async def load_for_resend(session: AsyncSession, app_id: str,
                          token_hash: bytes) -> tuple[App, User, datetime] | None:
    """The app and user of a link as ORM objects, and the link's expiry, for issuing a new link
    in this session."""
    row = (await session.execute(
        select(App, User, ConfirmationToken.expires_at)
        .select_from(ConfirmationToken)
        .join(User, User.object_id == ConfirmationToken.user_id)
        .join(App, App.app_id == User.app_id)
        .where(ConfirmationToken.token_hash == token_hash,
               ConfirmationToken.app_id == normalise_app_id(app_id))
    )).first()
    return None if row is None else (row[0], row[1], row[2])


def link_of(app: App, user: User, expires_at: datetime | None) -> Link:
    """The `Link` view of ORM objects, for rendering a page after a change."""
    return Link(
        app_id=app.app_id,
        app_name=app.name,
        identity_property=app.identity_property,
        confirm_on_get=app.confirm_on_get,
        confirmation_required=app.email_confirmation_required,
        user_id=user.object_id,
        status=user.status,
        expires_at=expires_at,
        properties=user.properties or {},
    )
