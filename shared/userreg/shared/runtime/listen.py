"""The one PostgreSQL LISTEN loop: a connection of its own that LISTENs on a channel, and is made
again whenever it is lost (through `Supervised`, so with its back-off and its log line).

A notification is never missed while listening, but everything notified while not listening is:
so each (re)connect tells the owner to catch up (`on_connect`: the outbox relay looks for rows at
once, the tenant cache forgets everything), and losing the connection tells it at once
(`on_disconnect`), not at the next check.

`caught_up()` is the way to be sure of "a change applies to the next request": a round trip on the
listening connection, which PostgreSQL answers only after sending every notification that was
pending (and a commit signals its listeners before it returns to the committer), so once it is
back every change committed before the call has been handled. Callers waiting at the same time
share one round trip; the periodic ping is such a round too (one query at a time on a connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg

from userreg.shared.runtime.tasks import Supervised

CONNECT_TIMEOUT_SECONDS = 10.0
# asyncpg tells us when the server closed the connection; between its signals the connection is
# pinged this often, so that a network that silently drops packets costs seconds, not hours.
CHECK_SECONDS = 2.0
PING_TIMEOUT_SECONDS = 5.0


class ListenConnectionLost(ConnectionError):
    """The LISTEN connection closed under us."""


class Listener:
    """LISTEN on `channel` with the plain asyncpg `dsn` until cancelled: `await listener.run()`.

    `on_notify(payload)` for each notification; `on_connect()` once listening (again), before the
    first notification can arrive; `on_disconnect()` as soon as a listening connection is lost.
    """

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[str], None],
        *,
        on_connect: Callable[[], None],
        on_disconnect: Callable[[], None] | None = None,
        name: str | None = None,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._check_seconds = check_seconds
        self.listening = False
        self._connection: asyncpg.Connection | None = None
        self._round: asyncio.Future[None] | None = None  # the round trip in flight
        self._next_round: asyncio.Future[None] | None = None  # the one that starts after it
        self.supervised = Supervised(name or f"LISTEN {channel}", self._listen_once, ready=lambda: self.listening)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after each loss of the connection."""
        await self.supervised.supervise()

    async def caught_up(self) -> bool:
        """Wait until every notification committed before this call has been handled; False when
        not listening (or the round trip failed), so nothing tells the owner about changes."""
        if not self.listening:
            return False
        if self._round is None or self._round.done():
            self._round = round_trip = _started(self._round_trip())
        else:  # the round in flight may have been sent before this call: wait for the next one
            if self._next_round is None:
                self._next_round = _started(self._round_trip_after(self._round))
            round_trip = self._next_round
        try:
            await asyncio.shield(round_trip)
        except Exception:  # the connection is lost or stuck: the LISTEN loop makes a new one
            return False
        return self.listening

    async def _round_trip_after(self, previous: asyncio.Future[None]) -> None:
        with contextlib.suppress(BaseException):
            await asyncio.shield(previous)
        self._round, self._next_round = self._next_round, None
        await self._round_trip()

    async def _round_trip(self) -> None:
        if self._connection is None or self._connection.is_closed():
            raise ListenConnectionLost(f"the LISTEN {self._channel} connection is not open")
        try:
            await self._connection.execute("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
        except TimeoutError:
            raise ListenConnectionLost(f"the LISTEN {self._channel} connection did not answer a ping") from None

    async def _listen_once(self) -> None:
        connection: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        lost = asyncio.Event()

        def connection_lost(_connection: object) -> None:
            lost.set()
            self._stop_listening()

        try:
            connection.add_termination_listener(connection_lost)
            await connection.add_listener(
                self._channel, lambda _connection, _pid, _channel, payload: self._on_notify(payload)
            )
            self._connection = connection
            self.listening = True
            self._on_connect()
            while not connection.is_closed():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_seconds)
                if not lost.is_set() and not await self.caught_up():
                    raise ListenConnectionLost(f"the LISTEN {self._channel} connection did not answer a ping")
            raise ListenConnectionLost(f"the LISTEN {self._channel} connection was closed")
        finally:
            self._stop_listening()
            self._connection = None
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)

    def _stop_listening(self) -> None:
        if self.listening:
            self.listening = False
            if self._on_disconnect is not None:
                self._on_disconnect()


def _started(round_trip: Coroutine[Any, Any, None]) -> asyncio.Future[None]:
    """A round trip as a task whose failure is never "never retrieved" (its waiters may be gone)."""
    task = asyncio.ensure_future(round_trip)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task
