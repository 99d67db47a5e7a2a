"""A user's property as an operator types it (`userreg user create APP name=value`, the console's
create-user form), typed by the app's Users schema. Pure: returns the value or raises
`app_settings.SettingRefused` (a `ValueError`) saying what is wrong, in words fit for the operator."""

from __future__ import annotations

import json
import math
from typing import Any

from userreg.shared.app_settings import SettingRefused, parse_bool, parse_int
from userreg.shared.db.models import ColumnType


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
            raise SettingRefused(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):
            raise SettingRefused(f"{name} must be a finite number, got {raw!r}")
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
