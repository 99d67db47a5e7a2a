"""Changes to an app's Users schema (docs/api.md, Apps) as an operator makes them, with `userreg schema` or in
the console: one implementation behind both. Add a column, change whether one is required and how
long its values may be, make one the identity (re-keying the users). The caller owns the
transaction (and locks the app's row first, so two operators' changes do not interleave).

What a property may be called and how identities compare are the registration service's rules;
`shared` imports no service, so its callers pass them in as `PropertyRules`
(`registration.operations.PROPERTY_RULES`).

Two kinds of refusal: `ColumnRefused` for input that can never be right (a bad name or length:
the operator's mistake), `SchemaConflict` for what the app's data does not allow (the column
exists, two users share a value of the new identity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.apps import DEFAULT_STRING_LENGTH, schema_of
from userreg.shared.db.models import App, ColumnType, SchemaColumn, User, UserStatus

TEXT_TYPES = (ColumnType.STRING, ColumnType.TEXT)
MAX_LENGTH_LIMIT = 1_000_000
PASSWORD_COLUMN = "password"
# What a message calls the max length unless told (the command names its option instead).
MAX_LENGTH = "max length"


@dataclass(frozen=True)
class PropertyRules:
    """The registration service's rules for property names and identities."""

    # What a new column may be called.
    column_name: re.Pattern[str]
    # Lower-cased names every user's record has besides its columns: a column of that name would clash.
    reserved: frozenset[str]
    # (identity value, identity property) → the key identities are compared and stored by.
    identity_key: Callable[[str, str], str]


class SchemaChangeRefused(ValueError):
    """The change was not made; the message says why, in words fit for the operator."""


class ColumnRefused(SchemaChangeRefused):
    """Input no schema accepts: a column name or a max length it cannot have. `field` names it."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class SchemaConflict(SchemaChangeRefused):
    """The app's schema or users do not allow the change."""


def ordered(columns: Iterable[SchemaColumn]) -> list[SchemaColumn]:
    """Built-in columns first, then the others, each by name."""
    return sorted(columns, key=lambda column: (not column.built_in, column.name_key))


def check_max_length(column_type: ColumnType, max_length: int | None, *, label: str = MAX_LENGTH) -> int | None:
    """The max length a column of this type gets (a STRING's default when None); `ColumnRefused`
    for a length it cannot have."""
    if max_length is None:
        return DEFAULT_STRING_LENGTH if column_type is ColumnType.STRING else None
    if column_type not in TEXT_TYPES:
        raise ColumnRefused(f"{label} applies to STRING and TEXT columns, not {column_type.value}", field="max_length")
    if not 1 <= max_length <= MAX_LENGTH_LIMIT:
        raise ColumnRefused(f"{label} must be between 1 and {MAX_LENGTH_LIMIT}", field="max_length")
    return max_length


def check_new_column(
    name: str,
    column_type: ColumnType,
    max_length: int | None,
    rules: PropertyRules,
    *,
    max_length_label: str = MAX_LENGTH,
) -> int | None:
    """The max length the new column gets; `ColumnRefused` for a name or length it cannot have."""
    if not rules.column_name.fullmatch(name):
        raise ColumnRefused(
            f"column name {name!r} must start with a letter and have only letters, digits and _"
            " (at most 200 characters)",
            field="name",
        )
    if name.lower() in rules.reserved:
        raise ColumnRefused(f"{name!r} is a system property of every user and cannot be a column", field="name")
    return check_max_length(column_type, max_length, label=max_length_label)


async def column_of(session: AsyncSession, app: App, name: str) -> SchemaColumn:
    """The app's column of this name (any case); `SchemaConflict` when it has none."""
    column = (await schema_of(session, app.app_id)).get(name.lower())
    if column is None:
        raise SchemaConflict(f"app {app.name!r} has no column {name!r}")
    return column


async def add_column(
    session: AsyncSession, app: App, name: str, column_type: ColumnType, *, required: bool, max_length: int | None
) -> SchemaColumn:
    """Add a column (its name and `max_length` passed `check_new_column`); `SchemaConflict` when the
    app has one of that name (in any case) already."""
    existing = (await schema_of(session, app.app_id)).get(name.lower())
    if existing is not None:
        raise SchemaConflict(f"app {app.name!r} has a column {existing.name!r} already")
    column = SchemaColumn(
        app_id=app.app_id,
        name_key=name.lower(),
        name=name,
        type=column_type,
        required=required,
        max_length=max_length,
        is_identity=False,
        built_in=False,
    )
    session.add(column)
    try:
        await session.flush()
    except IntegrityError:
        # A registration with dynamic schema added it at the same moment.
        raise SchemaConflict(f"app {app.name!r} has a column {name!r} already") from None
    return column


async def change_column(
    session: AsyncSession,
    app: App,
    name: str,
    *,
    required: bool,
    max_length: int | None,
    max_length_label: str = MAX_LENGTH,
) -> SchemaColumn:
    """Whether the column is required and how long its values may be (None: a STRING's default,
    a TEXT's unlimited). The password column keeps the registration's own rules for it."""
    column = await column_of(session, app, name)
    if column.name_key == PASSWORD_COLUMN:
        raise SchemaConflict(
            "the password column's rules are the registration's own: it is always required "
            "and at most 1024 characters long"
        )
    column.max_length = check_max_length(column.type, max_length, label=max_length_label)
    column.required = required
    await session.flush()
    return column


async def make_identity(session: AsyncSession, app: App, name: str, rules: PropertyRules) -> SchemaColumn:
    """Make the column the app's identity: the one column that identifies a user (unique per app,
    case-insensitive). Existing users are re-keyed; it fails if two of them share a value."""
    column = await column_of(session, app, name)
    if column.type is not ColumnType.STRING or column.name_key == PASSWORD_COLUMN:
        raise SchemaConflict(
            f"the identity must be a STRING column other than password; {column.name!r} "
            f"is {'the password' if column.name_key == PASSWORD_COLUMN else column.type.value}"
        )
    # Clear the old flag first: the database allows one identity column per app at any moment.
    await session.execute(
        update(SchemaColumn)
        .where(SchemaColumn.app_id == app.app_id, SchemaColumn.is_identity)
        .values(is_identity=False)
    )
    await session.flush()
    column.is_identity = True
    app.identity_property = column.name
    await session.flush()
    await rekey_users(session, app, column, rules)
    return column


async def rekey_users(session: AsyncSession, app: App, column: SchemaColumn, rules: PropertyRules) -> None:
    """Store every registered user's identity key from the column's value (guests have none).
    `SchemaConflict` when two users share a value: the identity must be unique."""
    users = (
        await session.execute(
            select(User.object_id, User.properties).where(User.app_id == app.app_id, User.status != UserStatus.GUEST)
        )
    ).all()
    keys = []
    for object_id, properties in users:
        value = properties.get(column.name)
        key = rules.identity_key(value, column.name) if isinstance(value, str) and value.strip() else None
        keys.append({"object_id": object_id, "identity_key": key})
    if not keys:
        return
    try:
        async with session.begin_nested():
            # Clear first: an old key of one user may be the new key of another.
            await session.execute(update(User).where(User.app_id == app.app_id).values(identity_key=None))
            await session.execute(update(User), keys)
    except IntegrityError:
        raise SchemaConflict(
            f"cannot make {column.name!r} the identity of app {app.name!r}: some of its users"
            " share a value (compared case-insensitively)"
        ) from None
