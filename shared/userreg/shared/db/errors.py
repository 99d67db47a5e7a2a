"""The one answer to "is the database away?": what every service treats as PostgreSQL being
unreachable, restarting or out of connections right now (worth a 503 and a retry), as opposed to a
bug or a refused statement."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import exc as sa_exc

# What a database that is away, restarting or overloaded raises (not what a bug raises), for
# `except` clauses; `database_unreachable` also looks through an error's causes.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    sa_exc.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


# What work that can simply be done again later (a message consumer's) treats as "not now": the
# database away, or a statement it refused at this moment (a timeout, a conflict).
RETRYABLE_DATABASE_ERRORS: tuple[type[BaseException], ...] = (*DATABASE_ERRORS, sa_exc.DBAPIError)


def database_unreachable(error: BaseException) -> bool:
    """True when the error, or one it was raised from, means PostgreSQL cannot be reached (or no
    connection is free) now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DATABASE_ERRORS):
            return True
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        current = current.__cause__ or current.__context__
    return False
