"""The one PostgreSQL LISTEN loop: a connection of its own that LISTENs on a channel, and is made
again whenever it is lost (through `Supervised`, so with its back-off and its log line).

A notification is never missed while listening, but everything notified while not listening is:
so each (re)connect tells the owner to catch up (`on_connect`: the outbox relay looks for rows at
once, the tenant cache forgets everything), and losing the connection tells it at once
(`on_disconnect`), not at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

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

    def __init__(self, dsn: str, channel: str, on_notify: Callable[[str], None], *,
                 on_connect: Callable[[], None], on_disconnect: Callable[[], None] | None = None,
                 name: str | None = None, check_seconds: float = CHECK_SECONDS) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._check_seconds = check_seconds
        self.listening = False
        self.supervised = Supervised(name or f"LISTEN {channel}", self._listen_once,
                                     ready=lambda: self.listening)

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after each loss of the connection."""
        await self.supervised.supervise()

    async def _listen_once(self) -> None:
        connection: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        lost = asyncio.Event()

        def connection_lost(_connection: object) -> None:
            lost.set()
            self._stop_listening()

        try:
            connection.add_termination_listener(connection_lost)
            await connection.add_listener(
                self._channel, lambda _connection, _pid, _channel, payload: self._on_notify(payload))
            self.listening = True
            self._on_connect()
            while not connection.is_closed():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_seconds)
                if not lost.is_set():
                    try:
                        await connection.fetchval("SELECT 1", timeout=PING_TIMEOUT_SECONDS)
                    except asyncio.TimeoutError:
                        raise ListenConnectionLost(
                            f"the LISTEN {self._channel} connection did not answer a ping") from None
            raise ListenConnectionLost(f"the LISTEN {self._channel} connection was closed")
        finally:
            self._stop_listening()
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)

    def _stop_listening(self) -> None:
        if self.listening:
            self.listening = False
            if self._on_disconnect is not None:
                self._on_disconnect()
