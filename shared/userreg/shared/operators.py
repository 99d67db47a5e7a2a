"""Console operators (services/console/README.md): accounts made with `userreg operator create`, signed in to the
console with a password hashed with argon2id (`shared.hashing`, by the caller: off the event loop).
An operator's email is kept in `mailbox_key` form, so one mailbox is one operator."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import Operator
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.tokens import new_guid

# What the console and the command accept as a password (as the API's 1024 for users).
PASSWORD_MIN_LENGTH = 12
PASSWORD_MAX_LENGTH = 1024


class OperatorExists(Exception):
    pass


def password_problem(password: str) -> str | None:
    """Why a new operator password is refused, or None."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"a password of at least {PASSWORD_MIN_LENGTH} characters is needed"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"a password may have at most {PASSWORD_MAX_LENGTH} characters"
    return None


async def create_operator(session: AsyncSession, email: str, password_hash: str) -> Operator:
    """A new operator in the caller's transaction; `OperatorExists` when the mailbox has one."""
    operator = Operator(operator_id=new_guid(), email=mailbox_key(email), password_hash=password_hash)
    session.add(operator)
    try:
        await session.flush()
    except IntegrityError:
        raise OperatorExists(email) from None
    return operator


async def find_operator(session: AsyncSession, email: str) -> Operator | None:
    return await session.scalar(select(Operator).where(Operator.email == mailbox_key(email)))


async def list_operators(session: AsyncSession) -> list[Operator]:
    return list(await session.scalars(select(Operator).order_by(Operator.created_at)))
