"""Engines and sessions are made by the services at start-up, never at import time."""

from __future__ import annotations

import asyncio
import functools
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from userreg.shared.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# The engine's execution option that says its connections go through a transaction pooler.
TRANSACTION_POOLER = "userreg_transaction_pooler"


def create_engine(settings: Settings, *, application_name: str = "userreg", **overrides: object) -> AsyncEngine:
    """The engine every service and command uses: at most `DATABASE_POOL_SIZE` +
    `DATABASE_MAX_OVERFLOW` connections, each with the settings' bounded waits
    (`connect_arguments`). Statement parameters never appear in error messages: they hold
    password hashes, token hashes and outbox rows with confirmation links, and error messages end
    up in logs and on an operator's terminal. `application_name` names the process's sessions in
    PostgreSQL (and the outbox notifications of what it inserts: `outbox.RELAYING_PRODUCERS`)."""
    extra_connect_args: Any = overrides.pop("connect_args", None) or {}
    connect_args = {**connect_arguments(settings), **extra_connect_args}
    # PgBouncer passes application_name on, unlike the other session settings.
    connect_args["server_settings"] = {**connect_args.get("server_settings", {}), "application_name": application_name}
    url = make_url(settings.database_dsn)
    if settings.database_transaction_pooler:
        # SQLAlchemy prepares every statement by name to learn its columns: a name of its own per
        # statement, never cached, so that no two clients' statements meet on a server connection.
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        connect_args["prepared_statement_name_func"] = _unique_statement_name
    options: dict[str, object] = {
        "execution_options": {TRANSACTION_POOLER: settings.database_transaction_pooler},
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
        "pool_pre_ping": True,
        "hide_parameters": True,
        "connect_args": connect_args,
    }
    options.update(overrides)
    return create_async_engine(url, **options)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The engine for statements that are atomic on their own, without the round trips of BEGIN
    and COMMIT. Through a transaction pooler it is the engine itself: SQLAlchemy prepares each
    statement, then executes it, and outside a transaction a pooler may send the two to different
    server connections."""
    if engine.get_execution_options().get(TRANSACTION_POOLER):
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _unique_statement_name() -> str:
    return f"__userreg_{uuid.uuid4().hex}__"


def session_dsn(settings: Settings) -> str:
    """The plain asyncpg DSN of a connection that needs a session of its own (a LISTEN loop):
    PostgreSQL itself, past any transaction pooler (`DATABASE_DIRECT_URL`)."""
    return asyncpg_dsn(settings.database_session_dsn)


def connect_arguments(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for `asyncpg.connect` and `asyncpg.create_pool` (and so for the engine)
    that bound every wait on the connection: connecting, each round trip (command timeout), the
    server's statement, lock and idle-in-transaction timeouts, and TCP keepalive on both ends.
    A connection made outside the engine (LISTEN, a plain asyncpg pool) should use them too."""
    keepalive = _Keepalive(
        settings.database_tcp_keepalives_idle,
        settings.database_tcp_keepalives_interval,
        settings.database_tcp_keepalives_count,
        settings.database_dead_connection_seconds,
    )
    arguments: dict[str, Any] = {
        "timeout": settings.database_connect_timeout,
        # asyncpg takes None for "no bound" (and fails every command at once with 0).
        "command_timeout": settings.database_command_timeout or None,
        "server_settings": {
            "statement_timeout": _milliseconds(settings.database_statement_timeout),
            "lock_timeout": _milliseconds(settings.database_lock_timeout),
            "idle_in_transaction_session_timeout": _milliseconds(settings.database_idle_in_transaction_timeout),
            # The server notices a client that vanished (its locks and its slot are freed) too.
            "tcp_keepalives_idle": str(keepalive.idle),
            "tcp_keepalives_interval": str(keepalive.interval),
            "tcp_keepalives_count": str(keepalive.count),
            "tcp_user_timeout": _milliseconds(keepalive.dead_after),
        },
        # asyncpg has no option for the client socket's keepalive: a connection class sets it.
        "connection_class": _keepalive_connection_class(keepalive),
    }
    if settings.database_transaction_pooler:
        # Each transaction may run on another server connection: no statement is kept prepared
        # beyond it, and no session setting is sent (PgBouncer refuses unknown startup
        # parameters; the README shows how to set the server's timeouts on the role instead).
        del arguments["server_settings"]
        arguments["statement_cache_size"] = 0
    return arguments


def _milliseconds(seconds: float) -> str:
    return str(round(seconds * 1000))


@dataclass(frozen=True)
class _Keepalive:
    idle: int
    interval: int
    count: int
    dead_after: int

    def apply(self, sock: socket.socket) -> None:
        """Turn keepalive on for a TCP socket (a Unix socket has nothing to probe)."""
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        # Linux names; macOS calls the idle time TCP_KEEPALIVE and has no TCP_USER_TIMEOUT.
        idle_option = getattr(socket, "TCP_KEEPIDLE", getattr(socket, "TCP_KEEPALIVE", None))
        for option, value in (
            (idle_option, self.idle),
            (getattr(socket, "TCP_KEEPINTVL", None), self.interval),
            (getattr(socket, "TCP_KEEPCNT", None), self.count),
            (getattr(socket, "TCP_USER_TIMEOUT", None), self.dead_after * 1000),
        ):
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


@functools.cache
def _keepalive_connection_class(keepalive: _Keepalive) -> type[asyncpg.Connection]:
    class KeepaliveConnection(asyncpg.Connection):
        """An asyncpg connection whose socket has TCP keepalive on (set as it is made)."""

        def __init__(self, protocol: Any, transport: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(protocol, transport, *args, **kwargs)
            sock = transport.get_extra_info("socket")
            if sock is not None:
                keepalive.apply(sock)

    return KeepaliveConnection


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg itself takes, for LISTEN and admin statements."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(sqlalchemy_url: str, settings: Settings | None = None) -> bool:
    """Create the database named in the URL if it is missing; True when this call created it.
    Safe to run from several processes at once (replicas, two `userreg migrate`): exactly one
    creates it, the others find it there. `settings` bound the waits (their defaults if None)."""
    url = make_url(sqlalchemy_url)
    conn = await _maintenance_connection(url, settings)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if exists:
            return False
        try:
            await conn.execute(f"CREATE DATABASE {_identifier(url.database)}")
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another process created it between our look and our CREATE (a CREATE racing another
            # one fails on pg_database's unique index, once that one committed): it is there.
            return False
        return True
    finally:
        await conn.close()


async def drop_database(sqlalchemy_url: str, settings: Settings | None = None) -> None:
    """Drop the database named in the URL, if it exists, disconnecting whoever still uses it."""
    url = make_url(sqlalchemy_url)
    conn = await _maintenance_connection(url, settings)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_identifier(url.database)} WITH (FORCE)")
    finally:
        await conn.close()


async def _maintenance_connection(url, settings: Settings | None) -> asyncpg.Connection:
    """A connection to the server's `postgres` database, for statements about databases."""
    arguments = connect_arguments(settings or Settings.model_construct())
    return await asyncpg.connect(
        asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False)), **arguments
    )


def _identifier(name: str | None) -> str:
    if not name:
        raise ValueError("the database URL names no database")
    return '"' + name.replace('"', '""') + '"'


def alembic_config(sqlalchemy_url: str):
    """The Alembic configuration of the migrations, on the database the URL names (for
    `alembic.command.upgrade/downgrade/current`)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["sqlalchemy_url"] = sqlalchemy_url
    return config


def _alembic_upgrade(sqlalchemy_url: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(sqlalchemy_url), "head")


async def migrate(sqlalchemy_url: str) -> None:
    """Bring the database schema to the newest migration (idempotent)."""
    # Alembic's env runs its own event loop; keep it off ours.
    await asyncio.to_thread(_alembic_upgrade, sqlalchemy_url)
