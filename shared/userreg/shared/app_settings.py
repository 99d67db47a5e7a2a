"""An app's settings as an operator writes them, in the command (`userreg app set APP name=value`)
and in the console's forms: each setting's label in words, and its value parsed and checked.

Pure functions: each returns the typed value or raises `SettingRefused` (a `ValueError`) saying
what is wrong, in words fit for the operator.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Boolean, Integer, String

from userreg.shared.apps import SETTINGS
from userreg.shared.db.models import App
from userreg.shared.origins import parse_allowed_origins
from userreg.shared.ratelimits import OFF, parse_rate_limit

TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
NULL_WORDS = frozenset({"", "null", "none"})
# A link that outlives ten years is a mistake, and the column is a 32-bit integer.
MAX_LINK_TTL_SECONDS = 10 * 365 * 24 * 3600
# Whole-number settings and their (minimum, maximum).
BOUNDS: dict[str, tuple[int, int]] = {
    "confirmationLinkTtl": (1, MAX_LINK_TTL_SECONDS),
    "maxDynamicColumns": (0, 10_000),
    "mailboxDailyEmailLimit": (1, 10_000),
    "guestTtl": (60, MAX_LINK_TTL_SECONDS),
    "sessionTtl": (60, MAX_LINK_TTL_SECONDS),
    # A reset link in a mailbox is a password to the account while it lives: a week at most.
    "passwordResetLinkTtl": (60, 7 * 24 * 3600),
}
# Each setting in words, as the contract writes it: the console's labels.
LABELS: dict[str, str] = {
    "name": "Name",
    "registrationEnabled": "Registration",
    "emailConfirmationRequired": "Email confirmation",
    "dynamicSchema": "Dynamic schema",
    "identityProperty": "Identity property",
    "confirmationLinkTtl": "Confirmation link lifetime",
    "welcomeEmailEnabled": "Welcome email",
    "confirmOnGet": "Confirm on GET",
    "beforeRegisterWebhookUrl": "Before-register webhook URL",
    "clientRateLimit": "Client rate limit",
    "maxDynamicColumns": "Dynamic columns cap",
    "mailboxDailyEmailLimit": "Mailbox daily email limit",
    "guestTtl": "Guest lifetime",
    "allowedOrigins": "Allowed origins",
    "sessionTtl": "Session lifetime",
    "passwordResetLinkTtl": "Password reset link lifetime",
}


class SettingRefused(ValueError):
    """A value an operator wrote that the setting cannot take; the message says why."""


def parse_bool(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingRefused(f"{name} must be true or false, got {raw!r}")


def parse_int(raw: str, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingRefused(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise SettingRefused(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SettingRefused(f"{name} must be at most {maximum}, got {value}")
    return value


def parse_http_url(raw: str, name: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingRefused(f"{name} must be an absolute http(s) URL, got {raw!r}")
    return raw.strip()


def parse_setting(name: str, raw: str) -> Any:
    """The typed value of an app setting given by its Backendless name (see `shared.apps.SETTINGS`)."""
    if name not in SETTINGS:
        raise SettingRefused(f"unknown setting {name!r}; settings are: {', '.join(SETTINGS)}")
    if name == "clientRateLimit":
        try:
            limit = parse_rate_limit(raw)
        except ValueError as error:
            raise SettingRefused(f"{name}: {error}") from None
        return OFF if limit is None else str(limit)
    if name == "allowedOrigins":
        try:
            return parse_allowed_origins(raw)
        except ValueError as error:
            raise SettingRefused(f"{name}: {error}") from None
    if name in BOUNDS:
        return parse_int(raw, name, *BOUNDS[name])
    if name == "beforeRegisterWebhookUrl":
        return None if raw.strip().lower() in NULL_WORDS else parse_http_url(raw, name)
    column = App.__table__.c[SETTINGS[name]]
    if isinstance(column.type, Boolean):
        return parse_bool(raw, name)
    if isinstance(column.type, Integer):
        return parse_int(raw, name)
    value = raw.strip()
    if not value:
        raise SettingRefused(f"{name} must not be empty")
    length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
    if length is not None and len(value) > length:
        raise SettingRefused(f"{name} must be at most {length} characters")
    return value
