"""`userreg dead-letters list|replay`: the emails the mailer gave up on (docs/api.md, Emails), through the
mailer's own functions. Replaying puts them back into the mailer's queue with a fresh set of
retries; a mailer that is running sends them."""

from __future__ import annotations

import argparse
from typing import Any

from userreg.admin.audit_log import record_after
from userreg.admin.broker import broker_errors
from userreg.admin.database import open_engine
from userreg.admin.errors import CommandFailed, UsageError
from userreg.mailer.operations import list_dead_letters, replay
from userreg.shared.settings import Settings

DEFAULT_LIST_LIMIT = 1000


async def list_letters(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    async with open_engine(settings):  # a clear error first if the database is not there
        pass
    async with broker_errors(settings, "read the dead-letter queue"):
        return await list_dead_letters(settings, include_replayed=args.all, limit=args.limit)


async def replay_letters(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    requested = list(dict.fromkeys(args.event_ids)) if args.event_ids else None
    async with open_engine(settings):
        pass
    async with broker_errors(settings, "replay dead letters"):
        replayed = await replay(settings, requested)
    # Recorded before a partial replay is reported as a failure: what was replayed was replayed.
    await record_after(settings, "dead-letters.replay", None, replayed=replayed, eventIds=requested)
    if requested is not None and replayed < len(requested):
        raise CommandFailed(
            f"replayed {replayed} of {len(requested)} requested events; the others are not "
            "in the dead-letter queue (see `userreg dead-letters list`)"
        )
    return {"replayed": replayed}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "dead-letters",
        help="list and replay the emails the mailer gave up on",
        description="Events the mailer could never send, parked in the dead-letter queue.",
    )
    sub = group.add_subparsers(dest="dead_letters_command", required=True, metavar="COMMAND")

    parser = sub.add_parser("list", help="what waits in the dead-letter queue, oldest first, with the reason (JSON)")
    parser.add_argument("--all", action="store_true", help="also those replayed earlier (no longer queued)")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT, help=f"default {DEFAULT_LIST_LIMIT}")
    parser.set_defaults(handler=list_letters)

    parser = sub.add_parser("replay", help="send dead letters back to the mailer (all, or the given events)")
    parser.add_argument(
        "--event-id",
        dest="event_ids",
        action="append",
        metavar="ID",
        help="replay only this event (repeatable); without it, every dead letter",
    )
    parser.set_defaults(handler=replay_letters)
