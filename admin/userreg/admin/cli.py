"""The `userreg` command: parse the arguments, read the settings, run one command, print its result.

Exit codes: 0 done, 1 the command failed (message on stderr), 2 bad arguments (argparse's code) or
a bad setting in the environment (a line per setting on stderr, as every service reports it).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.metadata import version

from userreg.admin.commands import (
    app,
    audit,
    completion,
    dead_letters,
    migrate,
    operator,
    run,
    schema,
    settings,
    template,
    user,
)
from userreg.admin.errors import CommandError
from userreg.admin.output import print_json
from userreg.shared.settings_loader import load_settings

GROUPS = (migrate, app, schema, template, user, dead_letters, operator, audit, settings, run)
# The product's one version, as installed (every package of it carries the same).
DISTRIBUTION = "userreg-admin"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="userreg",
        description="Operate userreg: database and topology, apps, schema, templates, users, dead letters, "
        "console operators, the audit log, and `userreg run` to start the whole system locally. Settings "
        "come from the environment (DATABASE_URL, AMQP_URL, …), as for the services.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version(DISTRIBUTION)}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(commands)
    # Last: it completes every command registered before it.
    completion.register(commands, parser)
    return parser


def _command_name(args: argparse.Namespace) -> str:
    """`userreg app set`, for error messages."""
    sub = getattr(args, f"{args.command.replace('-', '_')}_command", None)
    return " ".join(part for part in ("userreg", args.command, sub) if part)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Exits 2 on a bad setting, as on bad arguments; `completion` needs none.
    settings = load_settings("userreg") if getattr(args, "needs_settings", True) else None
    try:
        result = asyncio.run(args.handler(args, settings))
    except CommandError as exc:
        print(f"{_command_name(args)}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    if result is not None:
        print_json(result)
    return 0
