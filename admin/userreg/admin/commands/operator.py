"""`userreg operator create|list`: the console's operators (services/console/README.md). The password is typed twice
at a prompt that does not echo it, or piped in with `--password-stdin`; it is never an argument,
never printed, and stored only as its argon2id hash."""

from __future__ import annotations

import argparse
from typing import Any

from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.operator_accounts import add_operator, email_problem, hash_password, operator_json
from userreg.admin.passwords import read_password
from userreg.shared.operators import OperatorExists, find_operator, list_operators, password_problem
from userreg.shared.settings import Settings


async def create(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    email = args.email.strip()
    if problem := email_problem(email):
        raise UsageError(problem)
    async with open_database(settings) as sessions:
        # Before the password is asked for: no one types a password for nothing.
        async with sessions() as session:
            if await find_operator(session, email) is not None:
                raise CommandFailed(f"an operator {email!r} exists already (see `userreg operator list`)")
        password = read_password(args.password_stdin)
        if problem := password_problem(password):
            raise UsageError(problem)
        password_hash = await hash_password(settings, password)
        async with sessions() as session, session.begin():
            try:
                operator = await add_operator(session, email, password_hash)
            except OperatorExists:
                raise CommandFailed(f"an operator {email!r} exists already (see `userreg operator list`)") from None
            return operator_json(operator)


async def list_all(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    async with open_database(settings) as sessions, sessions() as session:
        return [operator_json(operator) for operator in await list_operators(session)]


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "operator",
        help="create and list the console's operators",
        description="Operators sign in to the web console (CONSOLE_PORT) with an email and a password.",
    )
    sub = group.add_subparsers(dest="operator_command", required=True, metavar="COMMAND")

    parser = sub.add_parser(
        "create",
        help="create an operator: userreg operator create EMAIL (password at a prompt)",
        description="Create a console operator. The password (at least 12 characters) is typed twice at a "
        "prompt, or piped in with --password-stdin; it is stored as its argon2id hash and never printed. "
        "Prints the operator as JSON; exits 1 when the operator exists.",
    )
    parser.add_argument("email", metavar="EMAIL", help="the address the operator signs in with")
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of a prompt",
    )
    parser.set_defaults(handler=create)

    parser = sub.add_parser("list", help="every operator: email, created, last sign-in (JSON)")
    parser.set_defaults(handler=list_all)
