"""Apps (tenants), their settings and their Users schema (docs/api.md, Apps)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import App, ColumnType, SchemaColumn
from userreg.shared.tokens import new_api_key, new_guid

DEFAULT_STRING_LENGTH = 500

# Settings an operator may change, by their Backendless name, with the attribute they live in.
SETTINGS: dict[str, str] = {
    "name": "name",
    "registrationEnabled": "registration_enabled",
    "emailConfirmationRequired": "email_confirmation_required",
    "dynamicSchema": "dynamic_schema",
    "identityProperty": "identity_property",
    "confirmationLinkTtl": "confirmation_link_ttl",
    "welcomeEmailEnabled": "welcome_email_enabled",
    "confirmOnGet": "confirm_on_get",
    "beforeRegisterWebhookUrl": "before_register_webhook_url",
    "clientRateLimit": "client_rate_limit",
    "maxDynamicColumns": "max_dynamic_columns",
    "mailboxDailyEmailLimit": "mailbox_daily_email_limit",
    "guestTtl": "guest_ttl",
    "allowedOrigins": "allowed_origins",
    "sessionTtl": "session_ttl",
    "passwordResetLinkTtl": "password_reset_link_ttl",
}


@dataclass(frozen=True)
class BuiltInColumn:
    name: str
    type: ColumnType
    is_identity: bool = False


BUILT_IN_COLUMNS = (
    BuiltInColumn("email", ColumnType.STRING, is_identity=True),
    BuiltInColumn("name", ColumnType.STRING),
    BuiltInColumn("password", ColumnType.STRING),
    BuiltInColumn("blUserLocale", ColumnType.STRING),
)


class AppNotFound(LookupError):
    pass


async def create_app(session: AsyncSession, name: str, **settings: Any) -> App:
    """Create an app with fresh keys and the built-in Users schema. `settings` are model attributes
    (e.g. `email_confirmation_required=True`). The caller commits."""
    app = App(app_id=new_guid(), name=name, rest_api_key=new_api_key(), server_api_key=new_api_key())
    for attribute, value in settings.items():
        setattr(app, attribute, value)
    session.add(app)
    await session.flush()
    for column in BUILT_IN_COLUMNS:
        session.add(
            SchemaColumn(
                app_id=app.app_id,
                name_key=column.name.lower(),
                name=column.name,
                type=column.type,
                required=False,
                max_length=1024 if column.name == "password" else DEFAULT_STRING_LENGTH,
                is_identity=column.is_identity,
                built_in=True,
            )
        )
    await session.flush()
    await session.refresh(app)
    return app


async def get_app(session: AsyncSession, app_id: str) -> App:
    app = await session.scalar(select(App).where(func.upper(App.app_id) == app_id.upper()))
    if app is None:
        raise AppNotFound(app_id)
    return app


async def app_named(session: AsyncSession, name: str, *, other_than: str | None = None) -> App | None:
    """The app called `name` (other than the app `other_than`), if any: an app's name is its own,
    usable in place of its appId, so creating or renaming an app refuses a name that is taken."""
    query = select(App).where(App.name == name)
    if other_than is not None:
        query = query.where(App.app_id != other_than)
    return await session.scalar(query.limit(1))


async def schema_of(session: AsyncSession, app_id: str) -> dict[str, SchemaColumn]:
    """The app's Users schema, keyed by lower-cased column name."""
    columns = await session.scalars(select(SchemaColumn).where(SchemaColumn.app_id == app_id))
    return {column.name_key: column for column in columns}


async def rotate_keys(session: AsyncSession, app: App) -> App:
    """New REST and server API keys for the app (the old ones stop working at once: every service
    drops its cached copy of the app when PostgreSQL notifies the change). The caller commits."""
    app.rest_api_key = new_api_key()
    app.server_api_key = new_api_key()
    await session.flush()
    return app


async def delete_app(session: AsyncSession, app: App) -> None:
    """Delete the app with everything that is its own: users, their tokens and sessions, schema,
    templates (the foreign keys cascade). The caller commits."""
    await session.delete(app)
    await session.flush()


def settings_of(app: App) -> dict[str, Any]:
    """The app's settings by their Backendless names."""
    return {key: getattr(app, attribute) for key, attribute in SETTINGS.items()}


def app_as_json(app: App) -> dict[str, Any]:
    return {"appId": app.app_id, "restApiKey": app.rest_api_key, "serverApiKey": app.server_api_key, **settings_of(app)}
