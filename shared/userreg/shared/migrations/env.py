"""Alembic environment: runs the migrations over asyncpg with the URL the caller passed in.

Many replicas (or several `userreg migrate`) may start at once: one migrates, the others wait for
it, then find nothing left to do. They serialise on a session-level advisory lock, held from
before Alembic reads the schema's version until the last migration committed. Session-level,
because a migration that builds an index CONCURRENTLY commits in the middle of the run
(`autocommit_block`), and a commit would release a transaction-level lock there.

The waiters poll for the lock (`pg_try_advisory_lock`, then a pause outside any transaction)
rather than block in `pg_advisory_lock`: a statement blocked on the lock holds a snapshot, and
CREATE INDEX CONCURRENTLY waits until every older snapshot in the database is gone, so the
migrating process's index build would wait for the waiter that waits for it (a deadlock).
"""

import asyncio
import contextlib
import time

from alembic import context
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from userreg.shared.db.models import Base

config = context.config
target_metadata = Base.metadata

MIGRATION_LOCK = 727274
LOCK_POLL_SECONDS = 0.2


def _run(connection) -> None:
    _lock(connection)
    try:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        _unlock(connection)


def _lock(connection) -> None:
    """Wait for the migration lock; no transaction stays open meanwhile (see the module's docstring)."""
    while True:
        taken = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": MIGRATION_LOCK}).scalar()
        connection.commit()
        if taken:
            return
        time.sleep(LOCK_POLL_SECONDS)


def _unlock(connection) -> None:
    # After a failure the connection may be unusable: closing it (NullPool) ends the session,
    # which releases the lock anyway.
    with contextlib.suppress(DBAPIError):
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()


async def _main() -> None:
    engine = create_async_engine(config.attributes["sqlalchemy_url"], poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


asyncio.run(_main())
