"""`userreg user create|list|set-status|sessions|end-sessions`: users, through the registration
service's own service layer, so an operator's user passes the same checks, gets the same response
shape and, when the app confirms emails, the same confirmation email (its event leaves through the
outbox relay of a running registration service). A user's sessions are shown by when they were
opened, last used and end, never by their token (only its digest is stored anyway).

A new user's password is never an argument: a process's command line is readable by every user of
the machine (ps, /proc) and stays in shell histories. It is typed at a prompt, or piped in with
`--password-stdin`."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from userreg.admin.audit_log import record_after
from userreg.admin.database import open_database, open_engine
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.admin.passwords import read_password
from userreg.admin.values import parse_assignments, parse_property
from userreg.registration.operations import (
    PASSWORD,
    ApiError,
    Registrar,
    SessionInfo,
    Tenant,
    open_registrar,
    parse_status,
    user_json,
)
from userreg.shared.db.models import User, UserStatus
from userreg.shared.locales import DEFAULT_LOCALE
from userreg.shared.settings import Settings

DEFAULT_LIST_LIMIT = 100


def refused(error: ApiError) -> CommandFailed | UsageError:
    """The registration API's error as the command's: a 400 means the operator's input was wrong
    (exit 2), anything else that the data did not allow it (exit 1). The code is kept."""
    kind = UsageError if error.http_status == 400 else CommandFailed
    return kind(f"{error.code} {error.message}")


@contextlib.asynccontextmanager
async def registrar(settings: Settings) -> AsyncIterator[Registrar]:
    """The registration service layer on the configured (checked) database, with one argon2id
    worker: a command creates one user at a time."""
    async with open_engine(settings) as engine, open_registrar(settings, engine, hash_workers=1) as service:
        yield service


async def _tenant(service: Registrar, settings: Settings, ref: str) -> Tenant:
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, ref)
    return await service.load_tenant(app.app_id)


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
        raise UsageError("the password is not taken on the command line, where other users of the "
                         "machine can read it: type it at the prompt or pipe it in with --password-stdin")
    password = read_password(args.password_stdin)
    async with registrar(settings) as service:
        tenant = await _tenant(service, settings, args.app)
        properties = {**typed_properties(tenant, raw), PASSWORD: password}
        try:
            user = await service.create_user(tenant, properties, locale=args.locale or DEFAULT_LOCALE)
        except ApiError as error:
            raise refused(error) from None
    created = user_json(user)
    await record_after(settings, "user.create", tenant.app.app_id, objectId=created["objectId"],
                       identity=created.get(tenant.app.identity_property))
    return created


async def list_users(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        query = select(User).where(User.app_id == app.app_id)
        if args.status:
            query = query.where(User.status == UserStatus(args.status))
        users = await session.scalars(query.order_by(User.created_at, User.object_id).limit(args.limit))
        return [user_json(user) for user in users]


async def set_status(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    try:
        target = parse_status(args.status.upper())
    except ApiError:
        raise UsageError(f"STATUS must be ENABLED or DISABLED, got {args.status!r}") from None
    async with registrar(settings) as service:
        tenant = await _tenant(service, settings, args.app)
        try:
            changed = await service.set_status(tenant, args.object_id, target)
        except ApiError as error:
            raise refused(error) from None
    result = {"objectId": args.object_id.upper(), "userStatus": target.value, "changed": changed}
    await record_after(settings, "user.set-status", tenant.app.app_id, **result)
    return result


def session_json(info: SessionInfo) -> dict[str, Any]:
    return {"created": info.created_at, "lastUsed": info.last_used_at, "expires": info.expires_at,
            "expired": info.expired}


async def list_sessions(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    async with registrar(settings) as service:
        tenant = await _tenant(service, settings, args.app)
        try:
            sessions = await service.accounts.sessions_of(tenant, args.identity)
        except ApiError as error:
            raise refused(error) from None
    return [session_json(info) for info in sessions]


async def end_sessions(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with registrar(settings) as service:
        tenant = await _tenant(service, settings, args.app)
        try:
            ended = await service.accounts.end_sessions(tenant, args.identity)
        except ApiError as error:
            raise refused(error) from None
    await record_after(settings, "user.end-sessions", tenant.app.app_id, identity=args.identity, ended=ended)
    return {"identity": args.identity, "ended": ended}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser("user", help="create, list and enable/disable users; their sessions",
                                description="Users of an app, through the registration service's rules.")
    sub = group.add_subparsers(dest="user_command", required=True, metavar="COMMAND")

    parser = sub.add_parser(
        "create", help="create a user: userreg user create APP email=a@b.c name=… (password at a prompt)",
        description="Create a user as registration does (same checks and error codes, same confirmation "
        "email). Values are typed by the app's schema; for a new property, numbers and true/false are "
        "taken as such. The password is typed at a prompt, or piped in with --password-stdin "
        "(`userreg user create APP email=… --password-stdin < password.txt`, or through a pipe); it is "
        "never a NAME=VALUE argument, where other users of the machine could read it. Prints the user "
        "as JSON (never the password).")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("properties", nargs="+", metavar="NAME=VALUE", help="the user's properties, "
                        "the password excepted")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input instead of a prompt")
    parser.add_argument("--locale", help="the user's blUserLocale when not given as a property (default en)")
    parser.set_defaults(handler=create_user)

    parser = sub.add_parser("list", help="the app's users, oldest first (JSON)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("--status", type=str.upper, choices=[status.value for status in UserStatus])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT, help=f"default {DEFAULT_LIST_LIMIT}")
    parser.set_defaults(handler=list_users)

    parser = sub.add_parser("set-status", help="ENABLED or DISABLED (disabling ends the user's sessions)")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("object_id", metavar="OBJECTID")
    parser.add_argument("status", metavar="STATUS", help="ENABLED or DISABLED")
    parser.set_defaults(handler=set_status)

    parser = sub.add_parser(
        "sessions", help="a user's sessions: created, last used, expires (JSON; never a token)",
        description="The sessions (user-tokens) of the user with this identity, oldest first: when each "
        "was opened, last used and ends (sessionTtl after its last use), and whether it has expired.")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("identity", metavar="IDENTITY", help="the value of the user's identity property")
    parser.set_defaults(handler=list_sessions)

    parser = sub.add_parser(
        "end-sessions", help="end every session of a user (its user-tokens stop working); prints how many",
        description="End every session of the user with this identity: each of its user-tokens answers 3064 "
        "from then on. Prints how many sessions were ended.")
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("identity", metavar="IDENTITY", help="the value of the user's identity property")
    parser.set_defaults(handler=end_sessions)
