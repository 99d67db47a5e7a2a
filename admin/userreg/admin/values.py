"""Parsing what an operator types: `key=value` pairs, app setting values, user property values.

Pure functions: each returns the parsed value or raises `UsageError` naming what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Boolean, Integer, String

from userreg.admin.errors import UsageError
from userreg.registration.operations import parse_allowed_origins
from userreg.shared.apps import SETTINGS
from userreg.shared.db.models import App, ColumnType
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


def parse_assignments(items: list[str], what: str = "setting") -> dict[str, str]:
    """`["a=1", "b=x=y"]` → `{"a": "1", "b": "x=y"}`; each item needs a name and an `=`."""
    parsed: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"expected {what} as NAME=VALUE, got {item!r}")
        if name in parsed:
            raise UsageError(f"{what} {name!r} given twice")
        parsed[name] = value
    if not parsed:
        raise UsageError(f"give at least one {what} as NAME=VALUE")
    return parsed


def parse_bool(raw: str, name: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise UsageError(f"{name} must be true or false, got {raw!r}")


def parse_int(raw: str, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise UsageError(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise UsageError(f"{name} must be at most {maximum}, got {value}")
    return value


def parse_http_url(raw: str, name: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{name} must be an absolute http(s) URL, got {raw!r}")
    return raw.strip()


def _column_of(setting: str):
    return App.__table__.c[SETTINGS[setting]]


def parse_setting(name: str, raw: str) -> Any:
    """The typed value of an app setting given by its Backendless name (see `shared.apps.SETTINGS`)."""
    if name not in SETTINGS:
        raise UsageError(f"unknown setting {name!r}; settings are: {', '.join(SETTINGS)}")
    if name == "clientRateLimit":
        try:
            limit = parse_rate_limit(raw)
        except ValueError as error:
            raise UsageError(f"{name}: {error}") from None
        return OFF if limit is None else str(limit)
    if name == "allowedOrigins":
        try:
            return parse_allowed_origins(raw)
        except ValueError as error:
            raise UsageError(f"{name}: {error}") from None
    if name in BOUNDS:
        return parse_int(raw, name, *BOUNDS[name])
    if name == "beforeRegisterWebhookUrl":
        return None if raw.strip().lower() in NULL_WORDS else parse_http_url(raw, name)
    column = _column_of(name)
    if isinstance(column.type, Boolean):
        return parse_bool(raw, name)
    if isinstance(column.type, Integer):
        return parse_int(raw, name)
    value = raw.strip()
    if not value:
        raise UsageError(f"{name} must not be empty")
    length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
    if length is not None and len(value) > length:
        raise UsageError(f"{name} must be at most {length} characters")
    return value


def parse_property(raw: str, column_type: ColumnType | None, name: str) -> Any:
    """A user property typed by its schema column. A property the schema does not know yet (dynamic
    schema) is read as a JSON number, boolean or null when it looks like one, else as text."""
    if column_type in (ColumnType.STRING, ColumnType.TEXT):
        return raw
    if column_type is ColumnType.INT:
        return parse_int(raw, name)
    if column_type is ColumnType.DOUBLE:
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise UsageError(f"{name} must be a finite number, got {raw!r}")
        return value
    if column_type is ColumnType.BOOLEAN:
        return parse_bool(raw, name)
    if column_type is ColumnType.DATETIME:
        # Backendless takes dates as epoch milliseconds.
        return parse_int(raw, name)
    if raw.strip().lower() == "null":
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return raw
