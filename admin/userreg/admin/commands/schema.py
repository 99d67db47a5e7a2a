"""`userreg schema list|add|set|set-identity|remove`: an app's Users schema. The changes and their
checks are `shared.schema_changes`' (the console makes them through the same functions); `set` may
also turn a STRING column into a TEXT one and back, the one change of type that leaves every stored
value valid as it is."""

from __future__ import annotations

import argparse
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.admin.audit_log import record
from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.admin.output import note
from userreg.registration.operations import PROPERTY_RULES
from userreg.shared import schema_changes
from userreg.shared.apps import DEFAULT_STRING_LENGTH, schema_of
from userreg.shared.db.models import App, ColumnType, SchemaColumn


def column_json(column: SchemaColumn) -> dict[str, Any]:
    return {
        "name": column.name,
        "type": column.type.value,
        "required": column.required,
        "maxLength": column.max_length,
        "identity": column.is_identity,
        "builtIn": column.built_in,
    }


async def make_identity(session: AsyncSession, app: App, name: str) -> SchemaColumn:
    """Make the column the app's identity, re-keying its users (`shared.schema_changes`, with the
    registration's rules); `CommandFailed` when the column or the users' values do not allow it."""
    try:
        return await schema_changes.make_identity(session, app, name, PROPERTY_RULES)
    except schema_changes.SchemaConflict as conflict:
        raise CommandFailed(str(conflict)) from None


async def list_columns(args: argparse.Namespace, settings) -> list[dict[str, Any]]:
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        columns = (await schema_of(session, app.app_id)).values()
        return [column_json(column) for column in schema_changes.ordered(columns)]


async def add_column(args: argparse.Namespace, settings) -> dict[str, Any]:
    column_type = ColumnType(args.type.upper())
    try:
        max_length = schema_changes.check_new_column(
            args.name, column_type, args.max_length, PROPERTY_RULES, max_length_label="--max-length"
        )
    except schema_changes.ColumnRefused as refused:
        raise UsageError(str(refused)) from None
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        try:
            column = await schema_changes.add_column(
                session, app, args.name, column_type, required=args.required, max_length=max_length
            )
        except schema_changes.SchemaConflict as conflict:
            raise CommandFailed(str(conflict)) from None
        added = column_json(column)
        record(session, "schema.add", app.app_id, column=added)
        return added


def change_type(column: SchemaColumn, column_type: ColumnType) -> None:
    """Give the column another type: only STRING ↔ TEXT (both hold text, so every user's value stays
    valid), and never for a built-in or the identity column; `CommandFailed` otherwise."""
    if column_type is column.type:
        return
    if column.built_in or column.is_identity:
        raise CommandFailed(
            f"{column.name!r} is {'a built-in' if column.built_in else 'the identity'} column: "
            f"its type stays {column.type.value}"
        )
    if {column.type, column_type} != set(schema_changes.TEXT_TYPES):
        raise CommandFailed(
            f"a {column.type.value} column cannot become {column_type.value}: its users' values "
            "would not fit (only STRING and TEXT change into each other; remove the column and "
            "add it again to start over)"
        )
    column.type = column_type


async def set_column(args: argparse.Namespace, settings) -> dict[str, Any]:
    if args.type is None and args.required is None and args.max_length is None:
        raise UsageError("give what changes: --type, --required or --optional, --max-length")
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        try:
            column = await schema_changes.column_of(session, app, args.name)
            before = column_json(column)
            change_type(column, ColumnType(args.type) if args.type else column.type)
            # Unless given, a column keeps its max length, or gets its new type's default.
            max_length = (
                args.max_length
                if args.max_length is not None
                else (column.max_length if column.type.value == before["type"] else None)
            )
            column = await schema_changes.change_column(
                session,
                app,
                column.name,
                required=column.required if args.required is None else args.required,
                max_length=max_length,
                max_length_label="--max-length",
            )
        except schema_changes.ColumnRefused as refused:
            raise UsageError(str(refused)) from None
        except schema_changes.SchemaConflict as conflict:
            raise CommandFailed(f"{conflict} (see `userreg schema list`)") from None
        after = column_json(column)
        record(session, "schema.change", app.app_id, column=column.name, before=before, after=after)
        return after


async def set_identity(args: argparse.Namespace, settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        column = await make_identity(session, app, args.name)
        record(session, "schema.set-identity", app.app_id, column=column.name)
        return column_json(column)


async def remove_column(args: argparse.Namespace, settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app, for_update=True)
        try:
            column = await schema_changes.column_of(session, app, args.name)
        except schema_changes.SchemaConflict as conflict:
            raise CommandFailed(f"{conflict} (see `userreg schema list`)") from None
        if column.built_in:
            raise CommandFailed(f"{column.name!r} is a built-in column and cannot be removed")
        if column.is_identity:
            raise CommandFailed(f"{column.name!r} is the identity column; make another column the identity first")
        # The column's values go with it, as when a column is deleted in Backendless.
        result = await session.execute(
            text(
                "UPDATE users SET properties = properties - ARRAY("
                "  SELECT k FROM jsonb_object_keys(properties) AS k WHERE lower(k) = :key)"
                " WHERE app_id = :app_id AND EXISTS ("
                "  SELECT 1 FROM jsonb_object_keys(properties) AS k WHERE lower(k) = :key)"
            ),
            {"key": column.name_key, "app_id": app.app_id},
        )
        await session.delete(column)
        if result.rowcount:
            note(f"removed {column.name!r} from {result.rowcount} user(s)")
        record(session, "schema.remove", app.app_id, column=column.name, usersChanged=result.rowcount)
        return {"removed": column.name, "usersChanged": result.rowcount}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "schema", help="list and change an app's Users schema", description="The columns of an app's Users schema."
    )
    sub = group.add_subparsers(dest="schema_command", required=True, metavar="COMMAND")

    parser = sub.add_parser("list", help="the app's columns (JSON)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.set_defaults(handler=list_columns)

    parser = sub.add_parser("add", help="add a column")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument(
        "--type", required=True, type=str.upper, choices=[t.value for t in ColumnType], help="the column's type"
    )
    parser.add_argument("--required", action="store_true", help="registration fails without a value (3012/3041)")
    parser.add_argument(
        "--max-length",
        type=int,
        metavar="N",
        help=f"longest value (STRING default {DEFAULT_STRING_LENGTH}, TEXT unlimited)",
    )
    parser.set_defaults(handler=add_column)

    parser = sub.add_parser(
        "set",
        help="change a column: --type STRING|TEXT, --required/--optional, --max-length N",
        description="Change whether a column is required and how long its values may be, as the console does; "
        "what is not given stays as it is. A STRING column may become TEXT and back (not a built-in or the "
        "identity column); other types stay. The password column keeps the registration's rules.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.add_argument(
        "--type",
        type=str.upper,
        choices=[t.value for t in ColumnType],
        help="STRING or TEXT for a STRING or TEXT column",
    )
    required = parser.add_mutually_exclusive_group()
    required.add_argument(
        "--required",
        dest="required",
        action="store_const",
        const=True,
        help="registration fails without a value (3012/3041)",
    )
    required.add_argument(
        "--optional", dest="required", action="store_const", const=False, help="a value may be left out"
    )
    parser.add_argument(
        "--max-length",
        type=int,
        metavar="N",
        help="longest value (STRING and TEXT; without it a changed type gets its default: "
        f"STRING {DEFAULT_STRING_LENGTH}, TEXT unlimited)",
    )
    parser.set_defaults(handler=set_column)

    parser = sub.add_parser("set-identity", help="make a STRING column the app's identity property")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.set_defaults(handler=set_identity)

    parser = sub.add_parser("remove", help="remove a column and its values (built-ins stay)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("name", metavar="NAME")
    parser.set_defaults(handler=remove_column)
