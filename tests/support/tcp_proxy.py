"""A TCP proxy a test can cut and restore, to make a real server unreachable for a while."""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

from tests.support.polling import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`. `cut()` drops every connection and refuses new ones
    (as if the server went away); `blackhole()` keeps every connection open but forwards nothing
    either way, and new connections are accepted but never answered (as if a network dropped the
    packets: nothing fails, everything waits); `restore()` forwards and accepts again on the same
    port. `accepted` counts the connections made through it."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._pipes: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.Task] = set()  # connections accepted while blackholed, not answered
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cut()

    @classmethod
    def in_front_of(cls, url: str, default_port: int) -> TcpProxy:
        """A proxy to the server a URL names (`amqp://…@host:port/`)."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)

    def url_through(self, url: str) -> str:
        """The URL with its host and port replaced by the proxy's."""
        netloc = urlsplit(url).netloc
        return url.replace(
            netloc,
            f"{netloc.rsplit('@', 1)[0]}@127.0.0.1:{self.port}" if "@" in netloc else f"127.0.0.1:{self.port}",
            1,
        )

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def blackhole(self) -> None:
        """Stop forwarding, in both directions and on every connection, old and new; nothing is
        closed. What arrives meanwhile is held back (and forwarded after `restore()`)."""
        self._flowing.clear()
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def restore(self) -> None:
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes | self._held):
            task.cancel()
        await asyncio.gather(*self._pipes, *self._held, return_exceptions=True)
        if server is not None:
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if not self._flowing.is_set():  # blackholed: connected, and never answered
            task = asyncio.current_task()
            assert task is not None
            self._held.add(task)
            try:
                await self._flowing.wait()
            except asyncio.CancelledError:
                client_writer.transport.abort()
                return
            finally:
                self._held.discard(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers.update((client_writer, upstream_writer))
        pipes = [
            asyncio.create_task(self._pipe(client_reader, upstream_writer)),
            asyncio.create_task(self._pipe(upstream_reader, client_writer)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self._pipes.difference_update(pipes)
            for writer in (client_writer, upstream_writer):
                self._writers.discard(writer)
                writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self._flowing.wait()
            data = await reader.read(65536)
            if not data:
                return
            await self._flowing.wait()  # blackholed while reading: hold the data back
            writer.write(data)
            await writer.drain()
