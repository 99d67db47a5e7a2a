"""The User Registration page's form (services/console/README.md): every app setting as a form control, in the seed's
order (the Registration and Email confirmation toggles first), labelled as docs/api.md writes it in words
(`shared.app_settings.LABELS`); and the posted form back into the raw values `parse_setting` reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean

from userreg.shared.app_settings import BOUNDS, LABELS
from userreg.shared.apps import SETTINGS
from userreg.shared.db.models import App

FIRST = ("registrationEnabled", "emailConfirmationRequired")
ORDER = FIRST + tuple(name for name in SETTINGS if name not in FIRST)
HINTS: dict[str, str] = {
    "name": "The app's own name; the userreg command accepts it in place of the App ID.",
    "registrationEnabled": "When off, registering answers error 3009.",
    "emailConfirmationRequired": "New users must confirm their email address before they can log in; "
    "the email property becomes required.",
    "dynamicSchema": "When off, a property that is not a column of the Users schema answers error 3010.",
    "identityProperty": "The STRING column that identifies a user (unique, compared case-insensitively).",
    "confirmationLinkTtl": "Seconds a confirmation link works.",
    "welcomeEmailEnabled": 'Send the "registration" email when a user registers.',
    "confirmOnGet": "Opening a confirmation link confirms at once, without the page's button "
    "(mail scanners open links too).",
    "beforeRegisterWebhookUrl": "Called before every registration; leave empty for none.",
    "clientRateLimit": "Requests per client address, e.g. 60/60s or 1000/1h; off for no limit.",
    "maxDynamicColumns": "Columns dynamic schema may add at most.",
    "mailboxDailyEmailLimit": "Confirmation and reset emails one mailbox gets per 24 hours.",
    "guestTtl": "Seconds before a guest that never registered is removed.",
    "allowedOrigins": "* for any, or the origins browsers may call the API from, separated by spaces.",
    "sessionTtl": "Seconds a login session lasts without being used.",
    "passwordResetLinkTtl": "Seconds a password-reset link works.",
}


@dataclass(frozen=True)
class SettingField:
    name: str  # the Backendless name: the form field's name
    label: str
    kind: str  # "toggle", "number", "url", "choice" or "text"
    value: Any  # a bool for a toggle, else the text shown in the control
    hint: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    error: str | None = None


def _is_boolean(name: str) -> bool:
    return isinstance(App.__table__.c[SETTINGS[name]].type, Boolean)


def _kind(name: str) -> str:
    if _is_boolean(name):
        return "toggle"
    if name in BOUNDS:
        return "number"
    if name == "beforeRegisterWebhookUrl":
        return "url"
    if name == "identityProperty":
        return "choice"
    return "text"


def shown_value(name: str, value: Any) -> Any:
    """A value (stored, or posted: text) as its control shows it."""
    if _is_boolean(name):
        return value == "true" if isinstance(value, str) else bool(value)
    return "" if value is None else str(value)


def setting_fields(
    values: Mapping[str, Any], errors: Mapping[str, str] | None = None, *, identity_choices: tuple[str, ...] = ()
) -> list[SettingField]:
    """The form's controls, in order, showing `values` (stored ones, or what was posted) and the
    `errors` per setting; `identity_choices` are the columns the identity may be."""
    errors = errors or {}
    fields = []
    for name in ORDER:
        minimum, maximum = BOUNDS.get(name, (None, None))
        fields.append(
            SettingField(
                name,
                LABELS[name],
                _kind(name),
                shown_value(name, values.get(name)),
                HINTS[name],
                minimum,
                maximum,
                identity_choices if name == "identityProperty" else (),
                errors.get(name),
            )
        )
    return fields


def raw_values(form: Mapping[str, str]) -> dict[str, str]:
    """The posted form as `parse_setting`'s raw text per setting. A toggle posts "true" when on and
    nothing when off (a checkbox), so an absent toggle is off."""
    raw = {}
    for name in ORDER:
        if _is_boolean(name):
            raw[name] = "true" if form.get(name, "").strip().lower() in ("true", "on") else "false"
        else:
            raw[name] = form.get(name, "")
    return raw


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The settings whose value differs: name → (old, new)."""
    return {name: (old.get(name), value) for name, value in new.items() if old.get(name) != value}
