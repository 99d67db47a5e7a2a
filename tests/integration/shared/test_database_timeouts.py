"""Bounded waits on every database connection, against the real PostgreSQL: a long statement, a
lock held elsewhere, a session left idle in a transaction and a network that swallows packets each
cost seconds, not the hours a connection with no bound can hang."""

from __future__ import annotations

import socket
import time

import asyncpg
import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.shared.db.engine import asyncpg_dsn, connect_arguments, create_engine
from userreg.shared.outbox import PUBLISH_TIMEOUT_SECONDS
from userreg.shared.settings import Settings

DEFAULTS = Settings.model_construct()
SERVER_SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "tcp_keepalives_idle",
    "tcp_keepalives_interval",
    "tcp_keepalives_count",
    "tcp_user_timeout",
)
LOCK_APP = text("SELECT 1 FROM apps WHERE app_id = :app_id FOR UPDATE")


def with_waits(settings: Settings, **waits: object) -> Settings:
    return settings.model_copy(update={f"database_{name}": value for name, value in waits.items()})


def sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None)


def client_keepalive(connection: asyncpg.Connection) -> tuple[int, ...]:
    sock = connection._transport.get_extra_info("socket")
    return (
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0,
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
    )


def test_the_default_waits_are_bounded_and_in_the_right_order():
    assert DEFAULTS.database_connect_timeout == 5
    assert DEFAULTS.database_statement_timeout == 30
    assert DEFAULTS.database_lock_timeout == 10
    # The server cancels a slow statement before the client gives up on the connection.
    assert DEFAULTS.database_statement_timeout < DEFAULTS.database_command_timeout <= 60
    # The outbox relay publishes with its claimed rows locked: a healthy publish must never be cut
    # short by the server, and a stuck relay's locks are released by it after this long.
    assert DEFAULTS.database_idle_in_transaction_timeout > PUBLISH_TIMEOUT_SECONDS
    assert DEFAULTS.database_dead_connection_seconds == 10 + 5 * 3
    with pytest.raises(ValidationError, match="DATABASE_COMMAND_TIMEOUT"):
        Settings(database_statement_timeout=30, database_command_timeout=30)
    with pytest.raises(ValidationError, match="DATABASE_COMMAND_TIMEOUT"):
        Settings(database_statement_timeout=0, database_command_timeout=35)
    Settings(database_statement_timeout=0, database_command_timeout=0)  # both off: a long admin job


async def test_every_connection_of_the_engine_and_a_plain_one_carry_the_waits(settings):
    expected = {
        "statement_timeout": "30s",
        "lock_timeout": "10s",
        "idle_in_transaction_session_timeout": "1min",
        "tcp_keepalives_idle": "10",
        "tcp_keepalives_interval": "5",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "25000",
    }
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            shown = {name: (await connection.execute(text(f"SHOW {name}"))).scalar() for name in SERVER_SETTINGS}
            driver = (await connection.get_raw_connection()).driver_connection
            assert client_keepalive(driver) == (True, 10, 5, 3, 25000)
    finally:
        await engine.dispose()
    assert shown == expected

    # What a LISTEN loop or a plain asyncpg pool opens with the same arguments.
    plain = await asyncpg.connect(asyncpg_dsn(settings.database_dsn), **connect_arguments(settings))
    try:
        assert {name: await plain.fetchval(f"SHOW {name}") for name in SERVER_SETTINGS} == expected
        assert client_keepalive(plain) == (True, 10, 5, 3, 25000)
    finally:
        await plain.close()


async def test_a_statement_longer_than_the_statement_timeout_fails_fast_and_the_connection_lives_on(settings):
    engine = create_engine(with_waits(settings, statement_timeout=0.5, command_timeout=10))
    try:
        async with engine.connect() as connection:
            started = time.monotonic()
            with pytest.raises(DBAPIError) as failure:
                await connection.execute(text("SELECT pg_sleep(30)"))
            assert time.monotonic() - started < 3
            assert sqlstate(failure.value) == "57014"  # query_canceled: by the server, cleanly
            await connection.rollback()
            assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_a_lock_wait_longer_than_the_lock_timeout_fails_fast(settings, engine, make_app):
    app = await make_app()
    waiting = create_engine(with_waits(settings, lock_timeout=0.5))
    try:
        async with engine.begin() as holder:
            await holder.execute(LOCK_APP, {"app_id": app.app_id})
            async with waiting.connect() as connection:
                started = time.monotonic()
                with pytest.raises(DBAPIError) as failure:
                    await connection.execute(LOCK_APP, {"app_id": app.app_id})
                assert time.monotonic() - started < 3
                assert sqlstate(failure.value) == "55P03"  # lock_not_available
    finally:
        await waiting.dispose()


async def test_a_session_idle_in_a_transaction_is_ended_by_the_server_and_its_locks_released(
    settings, engine, make_app
):
    app = await make_app()
    stuck = create_engine(with_waits(settings, idle_in_transaction_timeout=1.0), pool_pre_ping=False)
    try:
        async with stuck.connect() as connection:
            pid = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar()
            await connection.execute(LOCK_APP, {"app_id": app.app_id})
            # ... and then the process hangs, or its network goes silent, holding the row's lock.

            async def session_is_gone() -> bool:
                async with engine.connect() as other:
                    gone = text("SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = :pid")
                    return (await other.execute(gone, {"pid": pid})).scalar()

            await eventually(session_is_gone, timeout=10, interval=0.2, what="the idle session to be ended")
            async with engine.begin() as other:
                assert (
                    await other.execute(text("SELECT count(*) FROM pg_locks WHERE pid = :pid"), {"pid": pid})
                ).scalar() == 0
                # The row is free at once: NOWAIT fails if anyone still holds it.
                await other.execute(
                    text("SELECT 1 FROM apps WHERE app_id = :app_id FOR UPDATE NOWAIT"), {"app_id": app.app_id}
                )
            with pytest.raises(DBAPIError):
                await connection.execute(text("SELECT 1"))
    finally:
        await stuck.dispose()


async def test_a_blackholed_database_costs_seconds_not_minutes(settings):
    async with TcpProxy.in_front_of(settings.database_dsn, 5432) as proxy:
        through = with_waits(
            settings,
            url=SecretStr(proxy.url_through(settings.database_dsn)),
            connect_timeout=2.0,
            statement_timeout=1.0,
            command_timeout=2.0,
        )
        engine = create_engine(through)
        try:
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1

            await proxy.blackhole()
            # The pooled connection: its round trip never comes back. Bounded by the command
            # timeout (and the bounded close of the connection given up on).
            started = time.monotonic()
            with pytest.raises((TimeoutError, DBAPIError)):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            assert time.monotonic() - started < 8  # 4 s here, unloaded; without the bound: for ever
            # A new connection: the server never answers. Bounded by the connect timeout.
            started = time.monotonic()
            with pytest.raises((TimeoutError, DBAPIError, OSError)):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
            assert time.monotonic() - started < 5

            await proxy.restore()
            async with engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        finally:
            await engine.dispose()
