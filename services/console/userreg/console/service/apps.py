"""Apps in the console: the list with user counts, create, rotate keys, delete (services/console/README.md), through
`shared.apps`, each change with its audit entry in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import apps as repository
from userreg.console.rules.key_stamps import stamp_matches
from userreg.shared import apps as shared_apps
from userreg.shared import audit
from userreg.shared.app_settings import SettingRefused, parse_setting
from userreg.shared.db.models import App


@dataclass(frozen=True)
class AppSummary:
    app_id: str
    name: str
    users: int
    registration_enabled: bool
    email_confirmation_required: bool
    created_at: datetime


@dataclass(frozen=True)
class NewKeys:
    """An app's keys as they were just made: shown once, in the answer to the form that made them,
    and kept nowhere else (never in a repr, a log or the audit log)."""

    rest_api_key: str = field(repr=False)
    server_api_key: str = field(repr=False)


class NameTaken(ValueError):
    """Another app has this name already (names are usable in place of appIds)."""


class KeysChanged(ValueError):
    """The rotate form was of keys the app no longer has: rotated since its page was shown."""


class NameMismatch(ValueError):
    """The name typed to confirm a deletion is not the app's."""


class Apps:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def summaries(self) -> list[AppSummary]:
        async with self._sessions() as session:
            rows = await repository.apps_with_user_counts(session)
        return [
            AppSummary(
                app.app_id, app.name, users, app.registration_enabled, app.email_confirmation_required, app.created_at
            )
            for app, users in rows
        ]

    async def get(self, app_id: str) -> App:
        """The app (`shared.apps.AppNotFound` when there is none)."""
        async with self._sessions() as session:
            return await shared_apps.get_app(session, app_id)

    async def create(self, actor: str, raw_name: str) -> tuple[App, NewKeys]:
        """A new app with fresh keys; `SettingRefused` for a name that is no name, `NameTaken`."""
        name = parse_setting("name", raw_name)
        async with self._sessions.begin() as session:
            if await shared_apps.app_named(session, name) is not None:
                raise NameTaken(f"an app named {name!r} exists already")
            app = await shared_apps.create_app(session, name)
            audit.record(session, actor, "app.create", app.app_id, name=app.name)
        return app, NewKeys(app.rest_api_key, app.server_api_key)

    async def rotate_keys(self, actor: str, app_id: str, session_token: str, stamp: str) -> tuple[App, NewKeys]:
        """New REST and server keys; the old ones stop working at once. `stamp` is the form's
        (`rules.key_stamps`): `KeysChanged` when the keys changed since its page was shown."""
        async with self._sessions.begin() as session:
            app = await self._locked(session, app_id)
            if not stamp_matches(session_token, app.rest_api_key, stamp):
                raise KeysChanged("the keys were rotated since this page was shown")
            await shared_apps.rotate_keys(session, app)
            audit.record(session, actor, "app.rotate-keys", app.app_id, name=app.name)
        return app, NewKeys(app.rest_api_key, app.server_api_key)

    async def delete(self, actor: str, app_id: str, typed_name: str) -> str:
        """Delete the app with all that is its own, when `typed_name` is its name (`NameMismatch`
        otherwise); returns the name."""
        async with self._sessions.begin() as session:
            app = await self._locked(session, app_id)
            if typed_name.strip() != app.name:
                raise NameMismatch("the name typed is not the app's name")
            name, deleted_id = app.name, app.app_id
            await shared_apps.delete_app(session, app)
            audit.record(session, actor, "app.delete", deleted_id, name=name)
        return name

    @staticmethod
    async def _locked(session, app_id: str) -> App:
        app = await repository.app_for_update(session, app_id)
        if app is None:
            raise shared_apps.AppNotFound(app_id)
        return app


__all__ = ["AppSummary", "Apps", "KeysChanged", "NameMismatch", "NameTaken", "NewKeys", "SettingRefused"]
