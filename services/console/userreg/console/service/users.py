"""Users in the console (services/console/README.md): search by identity, page through, one user's details, and the
changes, made by the registration service's own service layer (`registration.operations`) so that
they follow the same rules as the API and `userreg user`: create (the confirmation email included
when the app confirms emails), enable/disable, resend the confirmation email, delete. The service
commits each change in its own transaction; its audit entry is written right after."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import users as repository
from userreg.console.rules.users import (
    PAGE_SIZE,
    PASSWORD,
    form_columns,
    like_prefix,
    page_count,
    typed_properties,
)
from userreg.registration.operations import Registrar, Tenant, identity_key
from userreg.shared import audit
from userreg.shared.apps import get_app, schema_of
from userreg.shared.db.models import App, SchemaColumn, User, UserStatus
from userreg.shared.locales import DEFAULT_LOCALE


class UserMissing(LookupError):
    """The app has no user with this objectId."""


class PropertiesRefused(ValueError):
    """Values of the create form that do not fit their columns, by column name."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass(frozen=True)
class UsersPage:
    app: App
    users: list[User]
    query: str
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class UserDetails:
    app: App
    user: User
    identity: str | None
    sessions: int
    session_last_used: datetime | None
    # The new email address waiting for its confirmation link, and when the link expires.
    pending_email: tuple[str, datetime] | None = None

    @property
    def can_resend(self) -> bool:
        return (
            self.app.email_confirmation_required
            and self.identity is not None
            and self.user.status is UserStatus.EMAIL_CONFIRMATION_PENDING
        )


def identity_of(app: App, user: User) -> str | None:
    value = user.properties.get(app.identity_property)
    return value if isinstance(value, str) and value else None


class Users:
    def __init__(self, sessions: async_sessionmaker, registrar: Registrar) -> None:
        self._sessions = sessions
        self._registrar = registrar

    async def page(self, app_id: str, query: str, page: int) -> UsersPage:
        """A page of the app's users, newest first; with `query`, those whose identity starts with
        it (compared as the app compares identities)."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            pattern = like_prefix(identity_key(query, app.identity_property)) if query else None
            users, total = await repository.users_page(
                session, app.app_id, identity_like=pattern, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
            )
        return UsersPage(app, users, query, page, page_count(total), total)

    async def details(self, app_id: str, object_id: str) -> UserDetails:
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            user = await repository.user_by_id(session, app.app_id, object_id)
            if user is None:
                raise UserMissing(object_id)
            count, last_used = await repository.sessions_of(session, user.object_id)
            pending_email = await repository.pending_email_of(session, user.object_id)
        return UserDetails(app, user, identity_of(app, user), count, last_used, pending_email)

    async def form(self, app_id: str) -> tuple[App, list[SchemaColumn]]:
        """The app and the columns its create form asks for."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            return app, form_columns((await schema_of(session, app.app_id)).values())

    async def create(self, actor: str, app_id: str, fields: dict[str, str]) -> User:
        """A user made as a registration makes one (`Registrar.create_user`: its checks and error
        codes, and the confirmation email when the app confirms emails). `PropertiesRefused` for
        values that do not fit their columns; the registration's `ApiError` otherwise."""
        tenant = await self._tenant(app_id)
        async with self._sessions() as session:
            columns = (await schema_of(session, tenant.app.app_id)).values()
        properties, errors = typed_properties(fields, columns)
        if errors:
            raise PropertiesRefused(errors)
        properties[PASSWORD] = fields.get(PASSWORD, "")
        user = await self._registrar.create_user(tenant, properties, locale=DEFAULT_LOCALE)
        await self._record(
            actor,
            "user.create",
            tenant.app.app_id,
            userId=user.object_id,
            identity=identity_of(tenant.app, user),
            status=user.status.value,
        )
        return user

    async def set_status(self, actor: str, app_id: str, object_id: str, target: UserStatus) -> bool:
        """Enable or disable (disabling ends the user's sessions); False when it already was."""
        tenant = await self._tenant(app_id)
        changed = await self._registrar.set_status(tenant, object_id, target)
        if changed:
            await self._record(
                actor, "user.set-status", tenant.app.app_id, userId=object_id.upper(), status=target.value
            )
        return changed

    async def resend_confirmation(self, actor: str, app_id: str, object_id: str) -> None:
        """A new confirmation link emailed to a user who has not confirmed yet."""
        details = await self.details(app_id, object_id)
        tenant = await self._tenant(details.app.app_id)
        await self._registrar.accounts.resend_confirmation(tenant, details.identity or "")
        await self._record(actor, "user.resend-confirmation", tenant.app.app_id, userId=details.user.object_id)

    async def delete(self, actor: str, app_id: str, object_id: str) -> None:
        tenant = await self._tenant(app_id)
        await self._registrar.accounts.delete_user(tenant, object_id)
        await self._record(actor, "user.delete", tenant.app.app_id, userId=object_id.upper())

    async def _tenant(self, app_id: str) -> Tenant:
        async with self._sessions() as session:
            app = await get_app(session, app_id)  # AppNotFound: the "not found" page
        return await self._registrar.load_tenant(app.app_id)

    async def _record(self, actor: str, action: str, app_id: str, **details: Any) -> None:
        async with self._sessions.begin() as session:
            audit.record(session, actor, action, app_id, **details)
