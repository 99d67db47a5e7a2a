"""Operators signing in and out, and their sessions (services/console/README.md).

A session is a random token in the operator's cookie, stored only as its SHA-256 digest; it ends
after `rules.sessions.IDLE_LIMIT` unused, or at sign-out. Sign-in attempts are counted per client
address and per email (`shared.ratelimits`), wrong and right ones alike, before the password is
checked; an unknown email costs the same argon2 verification as a known one, and both get the same
answer, so neither the timing nor the page tells which emails are operators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import operators as repository
from userreg.console.rules.sessions import idle_since, needs_touch
from userreg.shared.hashing import PasswordHashing
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.operators import find_operator
from userreg.shared.ratelimits import RateLimit, RateLimiter
from userreg.shared.tokens import hash_token, new_token

# Sign-in attempts allowed per 15 minutes: from one client address, and for one email.
SIGN_INS_PER_ADDRESS = RateLimit(30, 900)
SIGN_INS_PER_EMAIL = RateLimit(10, 900)


@dataclass(frozen=True)
class SignInLimits:
    """Sign-in attempts allowed per client address and per email (one limit each)."""

    per_address: RateLimit = SIGN_INS_PER_ADDRESS
    per_email: RateLimit = SIGN_INS_PER_EMAIL


@dataclass(frozen=True)
class SignedInOperator:
    operator_id: str
    email: str
    # The cookie's token: the CSRF tokens derive from it. Never shown, logged or printed.
    session_token: str = field(repr=False)


@dataclass(frozen=True)
class SignIn:
    """A sign-in attempt's outcome: the operator (with a new session), or refused; `retry_after`
    (seconds) when it was refused for too many attempts, without looking at the password."""

    operator: SignedInOperator | None
    retry_after: int | None = None


class OperatorSessions:
    def __init__(
        self,
        sessions: async_sessionmaker,
        hashing: PasswordHashing,
        rate_limiter: RateLimiter,
        limits: SignInLimits,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._hashing = hashing
        self._rate_limiter = rate_limiter
        self._limits = limits
        self._clock = clock

    async def sign_in(self, email: str, password: str, client: str) -> SignIn:
        email = email.strip()[:320]
        for bucket, key, limit in (
            ("console-sign-in-address", client, self._limits.per_address),
            ("console-sign-in-email", mailbox_key(email) or "-", self._limits.per_email),
        ):
            wait = await self._rate_limiter.hit(bucket, key, limit)
            if wait is not None:
                return SignIn(None, retry_after=wait)
        async with self._sessions() as session:
            operator = await find_operator(session, email) if email else None
        matches, needs_rehash = await self._hashing.verify(operator.password_hash if operator else None, password)
        if operator is None or not matches:
            return SignIn(None)
        new_hash = await self._hashing.hash(password) if needs_rehash else None
        token, now = new_token(), self._clock()
        async with self._sessions.begin() as session:
            await repository.delete_idle_sessions(session, idle_since(now))
            repository.add_session(session, operator.operator_id, hash_token(token), now)
            await repository.record_sign_in(session, operator.operator_id, now, new_hash)
        return SignIn(SignedInOperator(operator.operator_id, operator.email, token))

    async def operator_of(self, token: str) -> SignedInOperator | None:
        """The operator of a live session token; its last use is written down now and then."""
        now = self._clock()
        token_hash = hash_token(token)
        async with self._sessions() as session:
            found = await repository.session_operator(session, token_hash, idle_since(now))
            if found is None:
                return None
            operator_session, operator = found
            if needs_touch(operator_session.last_used_at, now):
                await repository.touch_session(session, token_hash, now)
                await session.commit()
        return SignedInOperator(operator.operator_id, operator.email, token)

    async def sign_out(self, token: str) -> None:
        async with self._sessions.begin() as session:
            await repository.delete_session(session, hash_token(token))
