"""`userreg audit list`: the audit log (services/console/README.md), newest first: every change made in the console or
with `userreg`, who made it, when, in which app. Entries outlive their apps, so `--app` also takes
the appId of an app deleted since."""

from __future__ import annotations

import argparse
import re
from typing import Any

from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.shared.audit import entries, entry_as_json
from userreg.shared.settings import Settings

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
APP_ID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")


async def list_entries(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    if not 1 <= args.limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIMIT}")
    if args.before is not None and args.before < 1:
        raise UsageError("--before must be an entry id (1 or more)")
    async with open_database(settings) as sessions, sessions() as session:
        app_id = None
        if args.app is not None:
            try:
                app_id = (await find_app(session, args.app)).app_id
            except CommandFailed:
                if not APP_ID.fullmatch(args.app):
                    raise
                app_id = args.app.upper()  # an app deleted since: its entries stay
        found = await entries(session, app_id=app_id, before_id=args.before, limit=args.limit)
        return [entry_as_json(entry) for entry in found]


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "audit",
        help="the audit log of changes made in the console or with userreg",
        description="Who changed what, when, in which app.",
    )
    sub = group.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    parser = sub.add_parser(
        "list",
        help="entries, newest first (JSON); page on with --before the last id printed",
        description="The audit log, newest first, as JSON: id, at, actor (operator:EMAIL or cli:USER@HOST), "
        "action (e.g. app.set, user.create), appId and details. Never a password, hash, token or key.",
    )
    parser.add_argument(
        "--app", metavar="APP", help="only this app's entries (appId or name; the appId of a deleted app works too)"
    )
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help=f"default {DEFAULT_LIMIT}")
    parser.add_argument("--before", type=int, metavar="ID", help="only entries older than this id")
    parser.set_defaults(handler=list_entries)
