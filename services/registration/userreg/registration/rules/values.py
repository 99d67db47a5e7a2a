"""A property's value as a column of each type stores it, and the text PostgreSQL can hold."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from userreg.registration import errors
from userreg.registration.rules.properties import shown
from userreg.shared.apps import DEFAULT_STRING_LENGTH
from userreg.shared.db.models import ColumnType

INT_RANGE = (-(2**63), 2**63 - 1)


def storable_text(text: str) -> bool:
    """PostgreSQL text/jsonb holds neither NUL nor lone surrogates."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def type_of(value: Any) -> ColumnType:
    """The type of the column a dynamic property becomes."""
    if isinstance(value, bool):
        return ColumnType.BOOLEAN
    if isinstance(value, int):
        return ColumnType.INT
    if isinstance(value, float):
        return ColumnType.DOUBLE
    return ColumnType.STRING


def default_length(column_type: ColumnType) -> int | None:
    """The length limit a new column of this type gets."""
    return DEFAULT_STRING_LENGTH if column_type is ColumnType.STRING else None


def clean_value(name: str, value: Any, column_type: ColumnType) -> Any:
    """The value as stored for a column of `column_type`; 3021 naming the property if it does not fit."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        raise errors.RegistrationError(f"Property {shown(name)} is not a finite number")
    wrong = errors.RegistrationError(f"Property {shown(name)} must be of type {column_type.value}")
    if column_type in (ColumnType.STRING, ColumnType.TEXT):
        if not isinstance(value, str):
            raise wrong
        if not storable_text(value):
            raise errors.RegistrationError(f"Property {shown(name)} contains characters that cannot be stored")
        return value
    if isinstance(value, bool):
        if column_type is ColumnType.BOOLEAN:
            return value
        raise wrong
    if column_type is ColumnType.BOOLEAN:
        raise wrong
    if column_type is ColumnType.INT:
        if not isinstance(value, int):
            raise wrong
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise errors.RegistrationError(f"Property {shown(name)} is out of the range of an INT column")
        return value
    if column_type is ColumnType.DOUBLE:
        if not isinstance(value, (int, float)):
            raise wrong
        return value
    # DATETIME: epoch milliseconds (as Backendless returns dates) or an ISO-8601 string; stored as ms.
    if isinstance(value, (int, float)):
        if not INT_RANGE[0] <= value <= INT_RANGE[1]:
            raise errors.RegistrationError(f"Property {shown(name)} is out of the range of a date")
        return int(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise errors.RegistrationError(
                f"Property {shown(name)} must be a date: epoch milliseconds or ISO-8601"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        try:
            return epoch_ms(moment)
        except (OverflowError, ValueError):
            raise errors.RegistrationError(f"Property {shown(name)} is out of the range of a date") from None
    raise wrong


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
