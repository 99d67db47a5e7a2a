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
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from tests.integration.admin.conftest import command_environment
from tests.support.polling import eventually
from userreg.shared.db import drop_database, ensure_database
from userreg.shared.db.engine import alembic_config, asyncpg_dsn
from userreg.shared.messaging import Topology, delete_topology

USERREG = str(Path(sys.executable).parent / "userreg")


def run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([USERREG, *argv], env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def other_database(settings, name: str) -> str:
    return make_url(settings.database_dsn).set(database=name).render_as_string(hide_password=False)


MIGRATION_LOCK = 727274  # the advisory lock the migration environment (migrations/env.py) takes
# The newest migration, whichever it is.
HEAD = ScriptDirectory.from_config(alembic_config("")).get_current_head()
# The indexes built CONCURRENTLY (on tables that may be large), and one built plainly.
INDEXES = {
    "ix_mail_deliveries_sent_at",
    "ix_dead_letters_replayed_at",
    "ix_users_guests_created",
    "ix_mailbox_emails_sent_at",
}


async def schema_state(url: str) -> tuple[str, dict[str, bool]]:
    """The database's migration version, and which of INDEXES exist and whether each is valid."""
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        version = await connection.fetchval("SELECT version_num FROM alembic_version")
        indexes = {
            row["relname"]: row["indisvalid"]
            for row in await connection.fetch(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = ANY($1::text[])",
                list(INDEXES),
            )
        }
    finally:
        await connection.close()
    return version, indexes


@pytest.fixture
async def fresh(settings):
    """A database name and an exchange nobody has used; both removed afterwards."""
    database = f"userreg_migrate_{uuid.uuid4().hex[:10]}"
    exchange = f"userreg.migrate.{uuid.uuid4().hex[:10]}"
    env = {
        **command_environment(settings),
        "DATABASE_URL": other_database(settings, database),
        "EVENTS_EXCHANGE": exchange,
    }
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
        tables = {
            row["tablename"]
            for row in await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
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


async def test_two_first_migrations_at_once_on_a_fresh_database_both_succeed(fresh):
    outcomes = await asyncio.gather(*(asyncio.to_thread(run, fresh, "migrate") for _ in range(2)))
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.stderr
    # One of them created the database; the other found it there (before its CREATE, or by losing
    # the race on it).
    assert sorted('"databaseCreated": true' in outcome.stdout for outcome in outcomes) == [False, True]
    assert await schema_state(fresh["DATABASE_URL"]) == (HEAD, dict.fromkeys(INDEXES, True))


async def test_concurrent_creations_of_a_database_all_succeed_and_one_creates_it(settings):
    url = other_database(settings, f"userreg_race_{uuid.uuid4().hex[:10]}")
    try:
        created = await asyncio.gather(*(ensure_database(url) for _ in range(4)))
    finally:
        await drop_database(url)
    assert sorted(created) == [False, False, False, True]


async def test_migrators_waiting_for_the_lock_do_not_stall_the_index_builds_of_the_one_migrating(fresh):
    # A migrator that waited *inside* a statement for the lock would hold a snapshot, which every
    # CREATE INDEX CONCURRENTLY of the migrating one waits for: a deadlock PostgreSQL breaks by
    # failing one of them. Hold the lock until both migrators wait for it, then let them race.
    url = fresh["DATABASE_URL"]
    assert await ensure_database(url)
    holder = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        migrators = [asyncio.create_task(asyncio.to_thread(run, fresh, "migrate")) for _ in range(2)]

        async def both_wait() -> bool:
            others = await holder.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return others >= 2

        try:
            await eventually(both_wait, timeout=60, interval=0.1, what="both migrators to wait for the lock")
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        outcomes = await asyncio.gather(*migrators)
    finally:
        await holder.close()
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.stderr
    assert await schema_state(url) == (HEAD, dict.fromkeys(INDEXES, True))


async def test_the_migrations_go_down_past_the_concurrent_index_builds_and_up_again(fresh):
    url = fresh["DATABASE_URL"]
    first = await asyncio.to_thread(run, fresh, "migrate")
    assert first.returncode == 0, first.stderr
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0003")
    assert await schema_state(url) == ("0003", {})
    again = await asyncio.to_thread(run, fresh, "migrate")
    assert again.returncode == 0, again.stderr
    assert await schema_state(url) == (HEAD, dict.fromkeys(INDEXES, True))


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
