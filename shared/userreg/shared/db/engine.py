"""Engines and sessions are made by the services at start-up, never at import time."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from userreg.shared.settings import Settings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_engine(settings: Settings, **overrides: object) -> AsyncEngine:
    """The engine every service and command uses. Statement parameters never appear in error
    messages: they hold password hashes, token hashes and outbox rows with confirmation links,
    and error messages end up in logs and on an operator's terminal."""
    options: dict[str, object] = {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_pool_size,
        "pool_pre_ping": True,
        "hide_parameters": True,
    }
    options.update(overrides)
    return create_async_engine(settings.database_dsn, **options)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg itself takes, for LISTEN and admin statements."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database(sqlalchemy_url: str) -> bool:
    """Create the database named in the URL if it is missing; True when it was created."""
    url = make_url(sqlalchemy_url)
    conn = await asyncpg.connect(asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{url.database}"')
        return True
    finally:
        await conn.close()


async def drop_database(sqlalchemy_url: str) -> None:
    """Drop the database named in the URL, if it exists, disconnecting whoever still uses it."""
    url = make_url(sqlalchemy_url)
    conn = await asyncpg.connect(asyncpg_dsn(url.set(database="postgres").render_as_string(hide_password=False)))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await conn.close()


def _alembic_upgrade(sqlalchemy_url: str) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["sqlalchemy_url"] = sqlalchemy_url
    command.upgrade(config, "head")


async def migrate(sqlalchemy_url: str) -> None:
    """Bring the database schema to the newest migration (idempotent)."""
    # Alembic's env runs its own event loop; keep it off ours.
    await asyncio.to_thread(_alembic_upgrade, sqlalchemy_url)
