"""The Users pages' rules: paging, the identity search as a LIKE pattern, the create form's values
typed by the app's schema, and a user's properties as the page shows them. Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from userreg.shared.app_settings import SettingRefused
from userreg.shared.db.models import ColumnType, SchemaColumn
from userreg.shared.property_values import parse_property

PAGE_SIZE = 25
MAX_PAGE = 100_000
PASSWORD = "password"
# The longest search text taken (an identity is at most a few hundred characters).
MAX_QUERY = 320


def page_number(raw: str | None) -> int:
    """The page asked for (1 when it is none or not a number)."""
    try:
        number = int((raw or "").strip())
    except ValueError:
        return 1
    return min(max(number, 1), MAX_PAGE)


def page_count(total: int) -> int:
    return max(1, -(-total // PAGE_SIZE))


def search_text(raw: str | None) -> str:
    return (raw or "").strip()[:MAX_QUERY]


def like_prefix(text: str) -> str:
    """A LIKE pattern (escape character "\\") matching what starts with `text`."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def epoch_ms(raw: str) -> str:
    """A `datetime-local` field's value ("2030-01-31T12:00", taken as UTC) as Backendless' epoch
    milliseconds; anything else (digits typed by hand) as it is, for `parse_property` to judge."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return raw
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


def form_columns(columns: Iterable[SchemaColumn]) -> list[SchemaColumn]:
    """The columns the create form asks for: identity first, then the others by name; the password
    has a field of its own."""
    return sorted(
        (column for column in columns if column.name_key != PASSWORD),
        key=lambda column: (not column.is_identity, not column.required, column.name_key),
    )


def typed_properties(
    fields: Mapping[str, str], columns: Iterable[SchemaColumn]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The new user's properties from the form (field `p.<column>` per column; empty ones left
    out), typed by the schema as `userreg user create` types them, and the refusals by column."""
    properties: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for column in form_columns(columns):
        raw = fields.get(f"p.{column.name}", "")
        if not raw.strip():
            continue
        if column.type is ColumnType.DATETIME:
            raw = epoch_ms(raw)
        try:
            properties[column.name] = parse_property(raw, column.type, column.name)
        except SettingRefused as refused:
            errors[column.name] = str(refused)
    return properties, errors


def shown_value(value: Any) -> str:
    """A property's value as text: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def shown_properties(properties: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A user's properties by name, the password (never stored there anyway) left out."""
    return sorted(
        ((name, shown_value(value)) for name, value in properties.items() if name.lower() != PASSWORD),
        key=lambda item: item[0].lower(),
    )
