"""Apps and their Users schemas, kept in memory between requests and dropped the moment PostgreSQL
says one changed.

Reading an app and its schema is a round trip on every request; the answer rarely changes. The
database notifies `userreg_apps` with the app's id whenever an `apps` or `schema_columns` row of it
commits (migration 0003), and the cache drops that app. Only while its LISTEN connection is up does
the cache answer at all: without it nothing would tell it about changes, so every request reads
the database (and on reconnecting it starts empty). A read that raced with a change is not stored.
A change applies to the next request, not merely soon after: an entry is answered only once the
listener has caught up (`Listener.caught_up`: one round trip, shared by the requests waiting).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from userreg.registration.rules.schema import AppRules, Column
from userreg.shared.db.models import App
from userreg.shared.runtime.listen import Listener

CHANNEL = "userreg_apps"
# A safety net only (a notification is never missed while listening): entries are re-read this often.
TTL_SECONDS = 60.0
MAX_ENTRIES = 10_000

T = TypeVar("T")


@dataclass(frozen=True)
class Tenant:
    """An app as read for one request: its row (detached) and the rules its schema makes."""

    app: App
    rules: AppRules


class TenantCache(Generic[T]):
    """`get` / `put` by appId (upper-case), valid while `run()` listens."""

    def __init__(self, dsn: str, *, ttl_seconds: float = TTL_SECONDS) -> None:
        self._dsn = dsn
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, T]] = {}
        self._generation = 0
        self.listening = False
        self._listener = Listener(
            self._dsn,
            CHANNEL,
            self._changed,
            on_connect=self._listening,
            on_disconnect=self._not_listening,
            name="tenant-cache-listen",
        )

    @property
    def generation(self) -> int:
        """Take it before reading the database; `put` stores the read only if nothing changed since."""
        return self._generation

    async def get(self, app_id: str) -> T | None:
        """The entry, once every change committed before this call has dropped what it changed."""
        if self.held(app_id) is None or not await self._listener.caught_up():
            return None
        return self.held(app_id)

    def held(self, app_id: str) -> T | None:
        """The entry as held now, without catching up (what `get` answers once it has)."""
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
        """Listen until cancelled, reconnecting after a database outage (the shared LISTEN loop)."""
        await self._listener.run()

    def _listening(self) -> None:
        self._changed(None)  # whatever happened while we were not listening
        self.listening = True

    def _not_listening(self) -> None:
        # Stop answering the moment the connection is lost: nothing would tell us about changes.
        self.listening = False
        self._changed(None)


async def find_tenant(
    key: str,
    tenants: TenantCache[Tenant] | None,
    read: Callable[[str], Awaitable[tuple[App, list[Column]] | None]],
) -> Tenant | None:
    """The app with this appId (upper-case) and the rules of its schema: from the cache when it holds
    them, else `read` from the database (and kept, unless a change raced with the read)."""
    generation = 0
    if tenants is not None:
        cached = await tenants.get(key)
        if cached is not None:
            return cached
        generation = tenants.generation
    found = await read(key)
    if found is None:
        return None
    app, columns = found
    tenant = Tenant(app, AppRules.of(app, columns))
    if tenants is not None:
        tenants.put(key, tenant, generation)
    return tenant
