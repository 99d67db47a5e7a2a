"""Parsing what an operator types: `key=value` pairs, app setting values, user property values.

Pure functions: each returns the parsed value or raises `UsageError` naming what is wrong. App
settings are parsed by `shared.app_settings`, user properties by `shared.property_values`, as in
the console.
"""

from __future__ import annotations

from typing import Any

from userreg.admin.errors import UsageError
from userreg.shared import app_settings, property_values
from userreg.shared.db.models import ColumnType


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
    return _as_usage(app_settings.parse_bool, raw, name)


def parse_int(raw: str, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    return _as_usage(app_settings.parse_int, raw, name, minimum, maximum)


def parse_setting(name: str, raw: str) -> Any:
    """The typed value of an app setting given by its Backendless name (`shared.app_settings`)."""
    return _as_usage(app_settings.parse_setting, name, raw)


def _as_usage(parse: Any, *args: Any) -> Any:
    try:
        return parse(*args)
    except app_settings.SettingRefused as refused:
        raise UsageError(str(refused)) from None


def parse_property(raw: str, column_type: ColumnType | None, name: str) -> Any:
    """A user property typed by its schema column (`shared.property_values`, as in the console)."""
    return _as_usage(property_values.parse_property, raw, column_type, name)
