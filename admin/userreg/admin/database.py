"""The database as an admin command uses it: one small engine per command, clear errors when the
database is unreachable or not migrated yet."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from userreg.admin.errors import CommandFailed
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.db.errors import RETRYABLE_DATABASE_ERRORS
from userreg.shared.settings import Settings, mask_url

# Connecting fails as with a database that is away (the one classification, shared.db.errors), or is
# refused by the server (no such database, a wrong password).
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (*RETRYABLE_DATABASE_ERRORS, asyncpg.PostgresError)


def describe_error(exc: BaseException) -> str:
    """One line saying why, without the SQL or a traceback."""
    cause = getattr(exc, "orig", None) or exc
    message = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return message


@contextlib.asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """An engine on the configured database, checked to be reachable and migrated."""
    # A command does one thing at a time: one connection is all it needs.
    engine = create_engine(settings, application_name="userreg-admin", pool_size=1, max_overflow=0)
    try:
        where = mask_url(settings.database_dsn)
        try:
            async with engine.connect() as connection:
                migrated = await connection.scalar(text("SELECT to_regclass('apps') IS NOT NULL"))
        except CONNECTION_ERRORS as exc:
            raise CommandFailed(
                f"cannot use the database {where}: {describe_error(exc)}"
                " (is PostgreSQL running? `userreg migrate` creates the database)"
            ) from exc
        if not migrated:
            raise CommandFailed(f"the database {where} has no userreg tables yet: run `userreg migrate`")
        yield engine
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[async_sessionmaker]:
    """Sessions on the configured database, checked to be reachable and migrated."""
    async with open_engine(settings) as engine:
        yield create_sessionmaker(engine)
