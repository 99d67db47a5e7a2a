"""`userreg schema list|add|set-identity|remove`: an app's Users schema (SPEC §2)."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.admin.output import note
from userreg.registration.operations import CLASS, COLUMN_NAME, OBJECT_ID, SYSTEM_PROPERTIES, identity_key
from userreg.shared.apps import DEFAULT_STRING_LENGTH, schema_of
from userreg.shared.db.models import App, ColumnType, SchemaColumn, User, UserStatus

# What a user's record always has besides its columns; a column of the same name would clash.
RESERVED = SYSTEM_PROPERTIES | {OBJECT_ID.lower(), CLASS.lower(), "id"}
TEXT_TYPES = (ColumnType.STRING, ColumnType.TEXT)
MAX_LENGTH_LIMIT = 1_000_000


def check_new_column(name: str, column_type: ColumnType, max_length: int | None) -> int | None:
    """The max length the new column gets; raises `UsageError` for a name or length it cannot have."""
    if not COLUMN_NAME.fullmatch(name):
        raise UsageError(f"column name {name!r} must start with a letter and have only letters, digits and _"
                         " (at most 200 characters)")
    if name.lower() in RESERVED:
        raise UsageError(f"{name!r} is a system property of every user and cannot be a column")
    if max_length is not None:
        if column_type not in TEXT_TYPES:
            raise UsageError(f"--max-length applies to STRING and TEXT columns, not {column_type.value}")
        if not 1 <= max_length <= MAX_LENGTH_LIMIT:
            raise UsageError(f"--max-length must be between 1 and {MAX_LENGTH_LIMIT}")
        return max_length
    return DEFAULT_STRING_LENGTH if column_type is ColumnType.STRING else None


def column_json(column: SchemaColumn) -> dict[str, Any]:
    return {"name": column.name, "type": column.type.value, "required": column.required,
            "maxLength": column.max_length, "identity": column.is_identity, "builtIn": column.built_in}


async def _column(session: AsyncSession, app: App, name: str) -> SchemaColumn:
    column = (await schema_of(session, app.app_id)).get(name.lower())
    if column is None:
        raise CommandFailed(f"app {app.name!r} has no column {name!r} (see `userreg schema list`)")
    return column


async def make_identity(session: AsyncSession, app: App, name: str) -> SchemaColumn:
    """Make the column the app's identity: the one column that identifies a user (unique per app,
    case-insensitive). Existing users are re-keyed; it fails if two of them share a value."""
    column = await _column(session, app, name)
    if column.type is not ColumnType.STRING or column.name_key == "password":
        raise CommandFailed(f"the identity must be a STRING column other than password; {column.name!r} "
                            f"is {'the password' if column.name_key == 'password' else column.type.value}")
    # Clear the old flag first: the database allows one identity column per app at any moment.
    await session.execute(update(SchemaColumn).where(SchemaColumn.app_id == app.app_id, SchemaColumn.is_identity)
                          .values(is_identity=False))
    await session.flush()
    column.is_identity = True
    app.identity_property = column.name
    await session.flush()
    await rekey_users(session, app, column)
    return column


async def rekey_users(session: AsyncSession, app: App, column: SchemaColumn) -> None:
    """Store every registered user's identity key from the column's value (guests have none).
    Fails with `CommandFailed` when two users share a value: the identity must be unique."""
    users = (await session.execute(select(User.object_id, User.properties).where(
        User.app_id == app.app_id, User.status != UserStatus.GUEST))).all()
    keys = []
    for object_id, properties in users:
        value = properties.get(column.name)
        key = identity_key(value, column.name) if isinstance(value, str) and value.strip() else None
        keys.append({"object_id": object_id, "identity_key": key})
    if not keys:
        return
    try:
        async with session.begin_nested():
            # Clear first: an old key of one user may be the new key of another.
            await session.execute(update(User).where(User.app_id == app.app_id).values(identity_key=None))
            await session.execute(update(User), keys)
    except IntegrityError:
        raise CommandFailed(f"cannot make {column.name!r} the identity of app {app.name!r}: some of its users"
                            " share a value (compared case-insensitively)") from None


async def list_columns(args: argparse.Namespace, settings) -> list[dict[str, Any]]:
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        columns = (await schema_of(session, app.app_id)).values()
        return [column_json(column) for column in sorted(columns, key=lambda c: (not c.built_in, c.name_key))]


async def add_column(args: argparse.Namespace, settings) -> dict[str, Any]:
    column_type = ColumnType(args.type.upper())
    max_length = check_new_column(args.name, column_type, args.max_length)
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        existing = (await schema_of(session, app.app_id)).get(args.name.lower())
        if existing is not None:
            raise CommandFailed(f"app {app.name!r} has a column {existing.name!r} already")
        column = SchemaColumn(app_id=app.app_id, name_key=args.name.lower(), name=args.name, type=column_type,
                              required=args.required, max_length=max_length, is_identity=False, built_in=False)
        session.add(column)
        try:
            await session.flush()
        except IntegrityError:
            # A registration with dynamic schema added it at the same moment.
            raise CommandFailed(f"app {app.name!r} has a column {args.name!r} already") from None
        return column_json(column)


async def set_identity(args: argparse.Namespace, settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        return column_json(await make_identity(session, app, args.name))


async def remove_column(args: argparse.Namespace, settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        column = await _column(session, app, args.name)
        if column.built_in:
            raise CommandFailed(f"{column.name!r} is a built-in column and cannot be removed")
        if column.is_identity:
            raise CommandFailed(f"{column.name!r} is the identity column; make another column the identity first")
        # The column's values go with it, as when a column is deleted in Backendless.
        result = await session.execute(text(
            "UPDATE users SET properties = properties - ARRAY("
            "  SELECT k FROM jsonb_object_keys(properties) AS k WHERE lower(k) = :key)"
            " WHERE app_id = :app_id AND EXISTS ("
            "  SELECT 1 FROM jsonb_object_keys(properties) AS k WHERE lower(k) = :key)"
        ), {"key": column.name_key, "app_id": app.app_id})
        await session.delete(column)
        if result.rowcount:
            note(f"removed {column.name!r} from {result.rowcount} user(s)")
        return {"removed": column.name, "usersChanged": result.rowcount}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("schema", help="list and change an app's Users schema",
                                description="The columns of an app's Users schema.")
    sub = group.add_subparsers(dest="schema_command", required=True, metavar="COMMAND")

    parser = sub.add_parser("list", help="the app's columns (JSON)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.set_defaults(handler=list_columns)

    parser = sub.add_parser("add", help="add a column")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument("--type", required=True, type=str.upper, choices=[t.value for t in ColumnType],
                        help="the column's type")
    parser.add_argument("--required", action="store_true", help="registration fails without a value (3012/3041)")
    parser.add_argument("--max-length", type=int, metavar="N",
                        help=f"longest value (STRING default {DEFAULT_STRING_LENGTH}, TEXT unlimited)")
    parser.set_defaults(handler=add_column)

    parser = sub.add_parser("set-identity", help="make a STRING column the app's identity property")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.set_defaults(handler=set_identity)

    parser = sub.add_parser("remove", help="remove a column and its values (built-ins stay)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.set_defaults(handler=remove_column)
