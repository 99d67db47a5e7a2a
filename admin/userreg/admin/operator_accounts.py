"""Console operators as the command makes them (`userreg operator create`, and the first operator
`userreg run` makes): the address checked, the password hashed with argon2id in one worker of
`shared.hashing` (the pool the services use, with the same parameters), the operator stored with
its audit entry in one transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from userreg.admin.audit_log import record
from userreg.shared.db.models import Operator
from userreg.shared.hashing import Argon2Parameters, PasswordHashing
from userreg.shared.operators import create_operator
from userreg.shared.settings import Settings

MAX_EMAIL_LENGTH = 320


def email_problem(email: str) -> str | None:
    """Why `email` cannot name an operator, or None. Only its shape is checked: an operator signs
    in with it and is never sent anything, so `admin@localhost` is as good as any."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return f"an operator's email must look like name@host, got {email!r}"
    if any(character.isspace() for character in email):
        return f"an operator's email has no spaces, got {email!r}"
    if len(email) > MAX_EMAIL_LENGTH:
        return f"an operator's email has at most {MAX_EMAIL_LENGTH} characters"
    return None


async def hash_password(settings: Settings, password: str) -> str:
    """The argon2id hash, made off the event loop by one worker process (a command hashes once)."""
    hashing = PasswordHashing(Argon2Parameters.from_settings(settings), workers=1)
    await hashing.start()
    try:
        return await hashing.hash(password)
    finally:
        await hashing.close()


async def add_operator(session: AsyncSession, email: str, password_hash: str) -> Operator:
    """The new operator and its "operator.create" entry, in the caller's transaction;
    `shared.operators.OperatorExists` when the mailbox has one already."""
    operator = await create_operator(session, email, password_hash)
    await session.refresh(operator)  # its created_at, set by the database
    record(session, "operator.create", None, email=operator.email)
    return operator


def operator_json(operator: Operator) -> dict[str, Any]:
    """What the command prints of an operator: never the password or its hash."""
    return {"email": operator.email, "created": operator.created_at, "lastSignIn": operator.last_sign_in_at}
