"""The runtime kit's reconnecting LISTEN loop, against PostgreSQL and a proxy that cuts it."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.shared.db.engine import asyncpg_dsn
from userreg.shared.runtime.listen import PING_TIMEOUT_SECONDS, Listener


async def test_the_listen_loop_reconnects_and_tells_its_owner_to_catch_up(database_url):
    dsn = asyncpg_dsn(database_url)
    events: list[object] = []
    listener = Listener(
        dsn,
        "userreg_test_runtime",
        events.append,
        on_connect=lambda: events.append("connected"),
        on_disconnect=lambda: events.append("lost"),
        check_seconds=0.2,
    )
    listening = asyncio.create_task(listener.run())
    admin = await asyncpg.connect(dsn)
    try:
        await eventually(lambda: listener.listening, timeout=10, what="the listener to listen")
        await admin.execute("SELECT pg_notify('userreg_test_runtime', 'one')")
        await eventually(lambda: "one" in events, timeout=5, what="the first notification")

        # The server drops the LISTEN connection: the owner hears of it at once, then it reconnects.
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND (query LIKE 'LISTEN %userreg_test_runtime%' OR query = 'SELECT 1')"
        )
        await eventually(lambda: events.count("connected") == 2, timeout=10, what="the listener to reconnect")
        assert events[:4] == ["connected", "one", "lost", "connected"]
        assert listener.supervised.restarts == 1
        await admin.execute("SELECT pg_notify('userreg_test_runtime', 'two')")
        await eventually(lambda: "two" in events, timeout=5, what="a notification after reconnecting")
    finally:
        await admin.close()
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert not listener.listening


async def test_a_listen_connection_that_goes_silent_is_replaced_within_seconds(database_url):
    async with TcpProxy.in_front_of(asyncpg_dsn(database_url), 5432) as proxy:
        events: list[object] = []
        listener = Listener(
            proxy.url_through(asyncpg_dsn(database_url)),
            "userreg_test_silent",
            events.append,
            on_connect=lambda: events.append("connected"),
            on_disconnect=lambda: events.append("lost"),
            check_seconds=0.2,
        )
        listening = asyncio.create_task(listener.run())
        try:
            await eventually(lambda: listener.listening, timeout=10, what="the listener to listen")
            await proxy.blackhole()
            started = time.monotonic()
            await eventually(lambda: "lost" in events, timeout=15, what="the silent connection to be noticed")
            assert time.monotonic() - started < PING_TIMEOUT_SECONDS + 2
            await proxy.restore()
            await eventually(lambda: events.count("connected") == 2, timeout=15, what="the listener to reconnect")
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)


async def test_once_caught_up_every_notification_committed_before_has_been_handled(database_url):
    """The guarantee behind "a change applies to the next request", many times over, with callers
    sharing round trips; and a listener that is not listening says so."""
    dsn = asyncpg_dsn(database_url)
    heard: list[str] = []
    listener = Listener(dsn, "userreg_test_caught_up", heard.append, on_connect=lambda: None)
    assert not await listener.caught_up()
    listening = asyncio.create_task(listener.run())
    writer = await asyncpg.connect(dsn)
    try:
        await eventually(lambda: listener.listening, timeout=10, what="the listener to listen")
        for number in range(200):
            await writer.execute(f"SELECT pg_notify('userreg_test_caught_up', '{number}')")
            results = await asyncio.gather(*(listener.caught_up() for _ in range(3)))
            assert results == [True] * 3 and heard[-1] == str(number)
    finally:
        await writer.close()
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
    assert not await listener.caught_up()
