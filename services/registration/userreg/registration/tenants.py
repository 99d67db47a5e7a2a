"""Apps and their Users schemas, kept in memory between requests and dropped the moment PostgreSQL
says one changed.

Reading an app and its schema is a round trip on every request; the answer rarely changes. The
database notifies `userreg_apps` with the app's id whenever an `apps` or `schema_columns` row of it
commits (migration 0003), and the cache drops that app. Only while its LISTEN connection is up does
the cache answer at all: without it nothing would tell it about changes, so every request reads
the database (and on reconnecting it starts empty). A read that raced with a change is not stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Generic, TypeVar

import asyncpg

logger = logging.getLogger(__name__)

CHANNEL = "userreg_apps"
RECONNECT_SECONDS = 1.0
# A safety net only (a notification is never missed while listening): entries are re-read this often.
TTL_SECONDS = 60.0
MAX_ENTRIES = 10_000

T = TypeVar("T")


class TenantCache(Generic[T]):
    """`get` / `put` by appId (upper-case), valid while `run()` listens."""

    def __init__(self, dsn: str, *, ttl_seconds: float = TTL_SECONDS) -> None:
        self._dsn = dsn
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, T]] = {}
        self._generation = 0
        self.listening = False

    @property
    def generation(self) -> int:
        """Take it before reading the database; `put` stores the read only if nothing changed since."""
        return self._generation

    def get(self, app_id: str) -> T | None:
        if not self.listening:
            return None
        entry = self._entries.get(app_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, app_id: str, value: T, generation: int) -> None:
        if not self.listening or generation != self._generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[app_id] = (time.monotonic() + self._ttl, value)

    def _changed(self, app_id: str | None) -> None:
        self._generation += 1
        if app_id is None:
            self._entries.clear()
        else:
            self._entries.pop(app_id.upper(), None)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after a database outage."""
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(self._dsn)
                # Stop answering the moment the connection is lost, not at the next check.
                connection.add_termination_listener(lambda _conn: setattr(self, "listening", False))
                await connection.add_listener(
                    CHANNEL, lambda _conn, _pid, _channel, payload: self._changed(payload))
                self._changed(None)  # whatever happened while we were not listening
                self.listening = True
                while not connection.is_closed():
                    await asyncio.sleep(RECONNECT_SECONDS)
                logger.warning("app-change LISTEN connection closed; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: serve without the cache meanwhile
                logger.warning("app-change LISTEN connection failed (%s); reconnecting", type(error).__name__)
            finally:
                self.listening = False
                self._changed(None)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
            await asyncio.sleep(RECONNECT_SECONDS)
