"""`userreg user sessions|end-sessions`: a user's sessions, shown by when they were opened, last
used and end, never by their token (only its digest is stored anyway)."""

from __future__ import annotations

import argparse
from typing import Any

from userreg.admin.audit_log import record_after
from userreg.admin.registration_access import refused, registrar, tenant_of
from userreg.registration.operations import ApiError, SessionInfo
from userreg.shared.settings import Settings


def session_json(info: SessionInfo) -> dict[str, Any]:
    return {
        "created": info.created_at,
        "lastUsed": info.last_used_at,
        "expires": info.expires_at,
        "expired": info.expired,
    }


async def list_sessions(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    async with registrar(settings) as service:
        tenant = await tenant_of(service, settings, args.app)
        try:
            sessions = await service.accounts.sessions_of(tenant, args.identity)
        except ApiError as error:
            raise refused(error) from None
    return [session_json(info) for info in sessions]


async def end_sessions(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    async with registrar(settings) as service:
        tenant = await tenant_of(service, settings, args.app)
        try:
            ended = await service.accounts.end_sessions(tenant, args.identity)
        except ApiError as error:
            raise refused(error) from None
    await record_after(settings, "user.end-sessions", tenant.app.app_id, identity=args.identity, ended=ended)
    return {"identity": args.identity, "ended": ended}


def add_session_commands(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sessions",
        help="a user's sessions: created, last used, expires (JSON; never a token)",
        description="The sessions (user-tokens) of the user with this identity, oldest first: when each "
        "was opened, last used and ends (sessionTtl after its last use), and whether it has expired.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("identity", metavar="IDENTITY", help="the value of the user's identity property")
    parser.set_defaults(handler=list_sessions)

    parser = sub.add_parser(
        "end-sessions",
        help="end every session of a user (its user-tokens stop working); prints how many",
        description="End every session of the user with this identity: each of its user-tokens answers 3064 "
        "from then on. Prints how many sessions were ended.",
    )
    parser.add_argument("app", metavar="APP", help="appId or name")
    parser.add_argument("identity", metavar="IDENTITY", help="the value of the user's identity property")
    parser.set_defaults(handler=end_sessions)
