"""The User Registration page of an app (services/console/README.md): its settings read for the form, and a posted form
checked in full (`shared.app_settings.parse_setting`, as `userreg app set` checks) and saved in one
transaction with an audit entry per changed setting, or not at all. A new identity property goes
through `shared.schema_changes.make_identity` (re-keying the users), as `userreg app set` and
`userreg schema set-identity` do. The services drop their cached copy of the app when PostgreSQL
notifies the change, so it applies to the next API request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import apps as repository
from userreg.console.rules.setting_fields import changed, raw_values
from userreg.shared import audit, schema_changes
from userreg.shared.app_settings import SettingRefused, parse_setting
from userreg.shared.apps import SETTINGS, AppNotFound, app_named, get_app, schema_of, settings_of
from userreg.shared.db.models import App, ColumnType
from userreg.shared.schema_changes import PropertyRules, SchemaChangeRefused
from userreg.shared.settings import mask_url


@dataclass(frozen=True)
class RegistrationSettings:
    """An app's settings as the form shows them, with the columns its identity may be."""

    app: App
    values: dict[str, Any]
    identity_choices: tuple[str, ...]


@dataclass(frozen=True)
class Saved:
    """A posted form's outcome: the settings changed (name → (old, new)), or the errors per
    setting (then nothing was saved, and `values` is what was posted)."""

    settings: RegistrationSettings
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def identity_columns(columns) -> tuple[str, ...]:
    """The columns that may be an identity: STRING ones, but the password."""
    return tuple(
        sorted(
            (
                column.name
                for column in columns.values()
                if column.type is ColumnType.STRING and column.name_key != "password"
            ),
            key=str.lower,
        )
    )


def audited_value(name: str, value: Any) -> Any:
    """A value as the audit log keeps it: a webhook URL without a password in it."""
    return mask_url(value) if name == "beforeRegisterWebhookUrl" and isinstance(value, str) else value


class UserRegistration:
    def __init__(self, sessions: async_sessionmaker, rules: PropertyRules) -> None:
        self._sessions = sessions
        self._rules = rules

    async def read(self, app_id: str) -> RegistrationSettings:
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            return RegistrationSettings(app, settings_of(app), identity_columns(await schema_of(session, app.app_id)))

    async def save(self, actor: str, app_id: str, form: Mapping[str, str]) -> Saved:
        raw = raw_values(form)
        parsed: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, text in raw.items():
            try:
                parsed[name] = parse_setting(name, text)
            except SettingRefused as refused:
                errors[name] = str(refused)
        try:
            return await self._save(actor, app_id, raw, parsed, errors)
        except SchemaChangeRefused as refused:  # the transaction was rolled back: nothing is saved
            current = await self.read(app_id)
            return Saved(
                RegistrationSettings(current.app, {**current.values, **raw}, current.identity_choices),
                errors={"identityProperty": str(refused)},
            )

    async def _save(
        self, actor: str, app_id: str, raw: dict[str, str], parsed: dict[str, Any], errors: dict[str, str]
    ) -> Saved:
        async with self._sessions.begin() as session:
            app = await repository.app_for_update(session, app_id)
            if app is None:
                raise AppNotFound(app_id)
            choices = identity_columns(await schema_of(session, app.app_id))
            # Only a new name must be free: apps made before names were unique may share one.
            renamed = "name" in parsed and parsed["name"] != app.name
            if renamed and await app_named(session, parsed["name"], other_than=app.app_id):
                errors["name"] = f"an app named {parsed['name']!r} exists already"
            if errors:  # nothing was changed: the transaction ends empty
                return Saved(RegistrationSettings(app, {**settings_of(app), **raw}, choices), errors=errors)
            changes = changed(settings_of(app), parsed)
            for name, (old, new) in changes.items():
                if name == "identityProperty":
                    await schema_changes.make_identity(session, app, new, self._rules)
                else:
                    setattr(app, SETTINGS[name], new)
                audit.record(
                    session,
                    actor,
                    "app.set",
                    app.app_id,
                    setting=name,
                    old=audited_value(name, old),
                    new=audited_value(name, new),
                )
            await session.flush()
            return Saved(RegistrationSettings(app, settings_of(app), choices), changes=changes)
