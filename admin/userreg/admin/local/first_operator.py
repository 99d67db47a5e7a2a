"""The console's first operator: `userreg run` makes one when there is none, so the console it
starts can be signed in to at once. Its password is generated (`secrets`), printed once in the
banner and never stored but as its argon2id hash; later runs find an operator and make none."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select

from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed
from userreg.admin.operator_accounts import add_operator, email_problem, hash_password
from userreg.shared.db.models import Operator
from userreg.shared.operators import OperatorExists
from userreg.shared.settings import Settings

DEFAULT_EMAIL = "admin@localhost"
# The environment variable that names the first operator instead.
EMAIL_VARIABLE = "FIRST_OPERATOR_EMAIL"
# 24 characters of base64url: 144 bits, well over the console's 12-character minimum.
PASSWORD_BYTES = 18


@dataclass(frozen=True)
class FirstOperator:
    email: str
    password: str = field(repr=False)


def first_operator_email(environ: Mapping[str, str]) -> str:
    email = environ.get(EMAIL_VARIABLE, "").strip() or DEFAULT_EMAIL
    if problem := email_problem(email):
        raise CommandFailed(f"{EMAIL_VARIABLE}: {problem}")
    return email


async def ensure_first_operator(settings: Settings, environ: Mapping[str, str]) -> FirstOperator | None:
    """A new operator with a generated password when the database has none; None when it has one."""
    email = first_operator_email(environ)
    async with open_database(settings) as sessions:
        async with sessions() as session:
            if await session.scalar(select(Operator.operator_id).limit(1)) is not None:
                return None
        password = secrets.token_urlsafe(PASSWORD_BYTES)
        password_hash = await hash_password(settings, password)
        async with sessions() as session, session.begin():
            try:
                operator = await add_operator(session, email, password_hash)
            except OperatorExists:  # another runner made it meanwhile: its banner shows the password
                return None
        return FirstOperator(operator.email, password)
