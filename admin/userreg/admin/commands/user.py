"""`userreg user create|show|list|export|set-status|delete|sessions|end-sessions`: users. Changes go
through the registration service's own service layer, so an operator's user passes the same
checks, gets the same response shape and, when the app confirms emails, the same confirmation
email (its event leaves through the outbox relay of a running registration service). A user's
sessions are shown by when they were opened, last used and end, never by their token (only its
digest is stored anyway). Reads (`show`, `list`, `export`) are `user_records`': the API's
representation of a user, never its hash.

A new user's password is never an argument: a process's command line is readable by every user of
the machine (ps, /proc) and stays in shell histories. It is typed at a prompt, or piped in with
`--password-stdin`."""

from __future__ import annotations

import argparse
from typing import Any

from userreg.admin.audit_log import record_after
from userreg.admin.commands.user_sessions import add_session_commands
from userreg.admin.database import open_database
from userreg.admin.errors import UsageError
from userreg.admin.lookup import find_app
from userreg.admin.output import note, print_json_lines
from userreg.admin.passwords import read_password
from userreg.admin.registration_access import refused, registrar, tenant_of
from userreg.admin.user_records import find_user, identity_of, user_batches, user_details, users_page
from userreg.admin.values import parse_assignments, parse_property
from userreg.registration.operations import (
    PASSWORD,
    ApiError,
    Tenant,
    parse_status,
    user_json,
)
from userreg.shared.db.models import UserStatus
from userreg.shared.locales import DEFAULT_LOCALE
from userreg.shared.settings import Settings

DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000


def typed_properties(tenant: Tenant, raw: dict[str, str]) -> dict[str, Any]:
    """`name=value` strings typed by the app's schema (see `values.parse_property`)."""
    typed = {}
    for name, value in raw.items():
        column = tenant.rules.columns.get(name.lower())
        typed[name] = parse_property(value, column.type if column else None, name)
    return typed


async def create_user(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    raw = parse_assignments(args.properties, "property")
    if any(name.lower() == PASSWORD for name in raw):
        raise UsageError(
            "the password is not taken on the command line, where other users of the "
            "machine can read it: type it at the prompt or pipe it in with --password-stdin"
        )
    password = read_password(args.password_stdin)
    async with registrar(settings) as service:
        tenant = await tenant_of(service, settings, args.app)
        properties = {**typed_properties(tenant, raw), PASSWORD: password}
        try:
            user = await service.create_user(tenant, properties, locale=args.locale or DEFAULT_LOCALE)
        except ApiError as error:
            raise refused(error) from None
    created = user_json(user)
    await record_after(
        settings,
        "user.create",
        tenant.app.app_id,
        objectId=created["objectId"],
        identity=created.get(tenant.app.identity_property),
    )
    return created


async def list_users(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    if not 1 <= args.limit <= MAX_LIST_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIST_LIMIT}")
    if args.offset < 0:
        raise UsageError("--offset must be 0 or more")
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        users = await users_page(
            session, app, status=_status(args), limit=args.limit, after=args.after, offset=args.offset
        )
        return [user_json(user) for user in users]


def _status(args: argparse.Namespace) -> UserStatus | None:
    return UserStatus(args.status) if args.status else None


async def show_user(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        return await user_details(session, app, await find_user(session, app, args.user))


async def delete_user(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        user = await find_user(session, app, args.user)
        identity = identity_of(app, user)
    confirm(
        args.yes,
        f"delete user {identity or user.object_id} ({user.object_id}) of app {app.name!r}, with its sessions and links",
    )
    async with registrar(settings) as service:
        try:
            await service.accounts.delete_user(await service.load_tenant(app.app_id), user.object_id)
        except ApiError as error:
            raise refused(error) from None
    await record_after(settings, "user.delete", app.app_id, objectId=user.object_id, identity=identity)
    return {"appId": app.app_id, "objectId": user.object_id, "identity": identity, "deleted": True}


async def export_users(args: argparse.Namespace, settings: Settings) -> None:
    """JSON Lines on stdout, written a batch at a time; how many on stderr."""
    exported = 0
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        async for batch in user_batches(session, app, status=_status(args)):
            print_json_lines(user_json(user) for user in batch)
            exported += len(batch)
    note(f"exported {exported} user(s) of app {app.name!r}")


async def set_status(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    try:
        target = parse_status(args.status.upper())
    except ApiError:
        raise UsageError(f"STATUS must be ENABLED or DISABLED, got {args.status!r}") from None
    async with registrar(settings) as service:
        tenant = await tenant_of(service, settings, args.app)
        try:
            changed = await service.set_status(tenant, args.object_id, target)
        except ApiError as error:
            raise refused(error) from None
    result = {"objectId": args.object_id.upper(), "userStatus": target.value, "changed": changed}
    await record_after(settings, "user.set-status", tenant.app.app_id, **result)
    return result


def confirm(yes: bool, what: str) -> None:
    """An irreversible change goes ahead only with --yes (`UsageError` naming what it would do)."""
    if not yes:
        raise UsageError(f"this would {what}: give --yes to do it; nothing changed")


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "user",
        help="create, show, list, export, enable/disable, delete users; sessions",
        description="Users of an app, through the registration service's rules.",
    )
    sub = group.add_subparsers(dest="user_command", required=True, metavar="COMMAND")

    parser = sub.add_parser(
        "create",
        help="create a user: userreg user create APP email=a@b.c name=… (password at a prompt)",
        description="Create a user as registration does (same checks and error codes, same confirmation "
        "email). Values are typed by the app's schema; for a new property, numbers and true/false are "
        "taken as such. The password is typed at a prompt, or piped in with --password-stdin "
        "(`userreg user create APP email=… --password-stdin < password.txt`, or through a pipe); it is "
        "never a NAME=VALUE argument, where other users of the machine could read it. Prints the user "
        "as JSON (never the password).",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument(
        "properties", nargs="+", metavar="NAME=VALUE", help="the user's properties, the password excepted"
    )
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of a prompt",
    )
    parser.add_argument("--locale", help="the user's blUserLocale when not given as a property (default en)")
    parser.set_defaults(handler=create_user)

    parser = sub.add_parser(
        "show",
        help="one user: as the API shows it, with status, created, last login, sessions (JSON)",
        description="One user of the app, named by its objectId or by its identity (compared as the app "
        "compares identities): the user as the API represents it (never the password or its hash), its "
        "status, when it was created, updated and last logged in, and how many sessions it has.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("user", metavar="IDENTITY|OBJECTID")
    parser.set_defaults(handler=show_user)

    statuses = [status.value for status in UserStatus]
    parser = sub.add_parser(
        "list",
        help="the app's users, oldest first (JSON); page on with --after the last objectId printed",
        description="The app's users as the API represents them, oldest first (ties by objectId): a stable "
        "order to page through. Page on with --after the objectId of the last user printed (right while "
        "users come and go), or skip users with --offset.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("--status", type=str.upper, choices=statuses)
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIST_LIMIT,
        metavar="N",
        help=f"at most N users (default {DEFAULT_LIST_LIMIT}, at most {MAX_LIST_LIMIT})",
    )
    paging = parser.add_mutually_exclusive_group()
    paging.add_argument("--after", metavar="OBJECTID", help="only users after this one in the order")
    paging.add_argument("--offset", type=int, default=0, metavar="N", help="skip the first N users")
    parser.set_defaults(handler=list_users)

    parser = sub.add_parser(
        "export",
        help="every user of the app as JSON Lines, one user per line, oldest first",
        description="Every user of the app (or those of one --status) as JSON Lines on standard output, "
        "one user per line as the API represents it (never the password or its hash), read and written "
        "a batch at a time: `userreg user export APP > users.jsonl`. How many on standard error.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("--status", type=str.upper, choices=statuses)
    parser.set_defaults(handler=export_users)

    parser = sub.add_parser(
        "delete",
        help="delete a user with its sessions and links (needs --yes)",
        description="Delete the user named by its objectId or identity, with its sessions, confirmation "
        "and password-reset links, as the console does. Irreversible: without --yes nothing is deleted.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("user", metavar="IDENTITY|OBJECTID")
    parser.add_argument("--yes", action="store_true", help="really delete it")
    parser.set_defaults(handler=delete_user)

    parser = sub.add_parser("set-status", help="ENABLED or DISABLED (disabling ends the user's sessions)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("object_id", metavar="OBJECTID")
    parser.add_argument("status", metavar="STATUS", help="ENABLED or DISABLED")
    parser.set_defaults(handler=set_status)
    add_session_commands(sub)
