"""`userreg migrate` on a fresh database, and how the command fails: exit codes, one-line messages,
never a traceback. These run the installed console script, as an operator does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import aio_pika
import asyncpg
import pytest
from sqlalchemy.engine import make_url
from userreg.shared.db import drop_database
from userreg.shared.db.engine import asyncpg_dsn
from userreg.shared.messaging import Topology, delete_topology

from tests.admin.conftest import command_environment

USERREG = str(Path(sys.executable).parent / "userreg")


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([USERREG, *argv], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def other_database(settings, name: str) -> str:
    return make_url(settings.database_dsn).set(database=name).render_as_string(hide_password=False)




@pytest.fixture
async def fresh(settings):
    """A database name and an exchange nobody has used; both removed afterwards."""
    database = f"userreg_migrate_{uuid.uuid4().hex[:10]}"
    exchange = f"userreg.migrate.{uuid.uuid4().hex[:10]}"
    env = {**command_environment(settings), "DATABASE_URL": other_database(settings, database),
           "EVENTS_EXCHANGE": exchange}
    yield env
    await drop_database(other_database(settings, database))
    await delete_topology(settings.amqp_dsn, Topology(exchange))


async def test_migrate_creates_the_database_and_the_topology_and_can_run_again(fresh, settings):
    first = await asyncio.to_thread(run, fresh, "migrate")
    assert first.returncode == 0, first.stderr
    assert '"databaseCreated": true' in first.stdout
    again = await asyncio.to_thread(run, fresh, "migrate")
    assert again.returncode == 0, again.stderr
    assert '"databaseCreated": false' in again.stdout

    connection = await asyncpg.connect(asyncpg_dsn(fresh["DATABASE_URL"]))
    try:
        tables = {row["tablename"] for row in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        await connection.close()
    assert {"apps", "users", "schema_columns", "confirmation_tokens", "outbox", "templates"} <= tables

    topology = Topology(fresh["EVENTS_EXCHANGE"])
    broker = await aio_pika.connect(settings.amqp_dsn)
    try:
        channel = await broker.channel()
        await channel.get_exchange(topology.exchange, ensure=True)
        for name in (topology.mailer_queue, topology.mailer_dead_letter_queue):
            await channel.get_queue(name, ensure=True)  # raises if it was not declared
    finally:
        await broker.close()

    # The migrated database is ready for the other commands.
    created = await asyncio.to_thread(run, fresh, "app", "create", "--name", "first")
    assert created.returncode == 0, created.stderr


async def test_a_database_that_was_never_migrated_says_so(settings):
    database = f"userreg_empty_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(asyncpg_dsn(other_database(settings, "postgres")))
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
    finally:
        await admin.close()
    try:
        env = {**command_environment(settings), "DATABASE_URL": other_database(settings, database)}
        outcome = await asyncio.to_thread(run, env, "app", "list")
    finally:
        await drop_database(other_database(settings, database))
    assert outcome.returncode == 1
    assert "has no userreg tables yet: run `userreg migrate`" in outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_unreachable_servers_fail_with_one_line_and_exit_1(settings):
    env = command_environment(settings)
    no_database = run({**env, "DATABASE_URL": "postgresql+asyncpg://postgres:pw@127.0.0.1:1/userreg"}, "app", "list")
    assert no_database.returncode == 1
    assert no_database.stderr.startswith("userreg app list: cannot use the database")
    assert "pw@" not in no_database.stderr, "the password in the URL is masked"
    no_broker = run({**env, "AMQP_URL": "amqp://guest:secret@127.0.0.1:1/"}, "migrate")
    assert no_broker.returncode == 1
    assert "cannot declare the topology on RabbitMQ at amqp://guest:***@127.0.0.1:1/" in no_broker.stderr
    for outcome in (no_database, no_broker):
        assert "Traceback" not in outcome.stderr and len(outcome.stderr.strip().splitlines()) == 1
        assert outcome.stdout == ""


def test_bad_arguments_and_bad_settings_exit_2(settings):
    env = command_environment(settings)
    for argv in (["app"], ["nonsense"], ["schema", "add", "x", "y"], ["user", "list", "x", "--limit", "many"]):
        outcome = run(env, *argv)
        assert outcome.returncode == 2, argv
        assert "usage: userreg" in outcome.stderr and "Traceback" not in outcome.stderr
    bad_settings = run({**env, "PUBLIC_CONFIRMATION_URL": "not-a-url"}, "app", "list")
    assert bad_settings.returncode == 2
    assert "PUBLIC_CONFIRMATION_URL" in bad_settings.stderr and "Traceback" not in bad_settings.stderr


def test_help_lists_every_command_group():
    outcome = subprocess.run([USERREG, "--help"], capture_output=True, text=True, timeout=60)
    assert outcome.returncode == 0
    for group in ("migrate", "app", "schema", "template", "user", "dead-letters", "run"):
        assert group in outcome.stdout
