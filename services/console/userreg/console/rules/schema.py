"""The Users schema forms as the console reads them: a column's type, its max length and the
"required" checkbox, typed or refused (`shared.schema_changes.ColumnRefused`, naming the field the
message goes next to). Pure functions."""

from __future__ import annotations

from userreg.shared.db.models import ColumnType
from userreg.shared.schema_changes import ColumnRefused

# The words the console puts before a message about the max length ("Max length must be …").
MAX_LENGTH_LABEL = "Max length"
# A checkbox's value when ticked (an unticked one is not posted at all).
CHECKED = "on"


def parse_column_type(raw: str) -> ColumnType:
    try:
        return ColumnType(raw.strip().upper())
    except ValueError:
        types = ", ".join(column_type.value for column_type in ColumnType)
        raise ColumnRefused(f"Type must be one of {types}", field="type") from None


def parse_max_length(raw: str) -> int | None:
    """The max length typed ("" : none given, the type's default)."""
    text = raw.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise ColumnRefused(f"{MAX_LENGTH_LABEL} must be a whole number, got {raw!r}", field="max_length") from None


def is_checked(raw: str) -> bool:
    return raw == CHECKED
