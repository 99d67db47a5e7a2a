"""`userreg migrate`: the database (created if missing, then migrated) and the RabbitMQ topology."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import aio_pika
from sqlalchemy.engine import make_url

from userreg.admin.broker import broker_errors
from userreg.admin.database import CONNECTION_ERRORS, describe_error
from userreg.admin.errors import CommandFailed
from userreg.shared.db import ensure_database, migrate
from userreg.shared.messaging import Topology, declare_topology
from userreg.shared.settings import Settings, mask_url

BROKER_TIMEOUT_SECONDS = 15.0


async def prepare(settings: Settings) -> dict[str, Any]:
    """Everything the services need before they start; idempotent, safe to run again and from
    several places at once (a migration takes alembic's lock, declarations are idempotent)."""
    try:
        # Past any transaction pooler: the migrations hold a session-level advisory lock.
        created = await ensure_database(settings.database_session_dsn, settings)
        await migrate(settings.database_session_dsn)
    except CONNECTION_ERRORS as exc:
        raise CommandFailed(
            f"cannot prepare the database {mask_url(settings.database_dsn)}: {describe_error(exc)}"
        ) from exc
    topology = Topology.from_settings(settings)
    async with broker_errors(settings, "declare the topology"):
        # A one-off connection: nothing to restore later, and a refusal is an answer, not a retry.
        connection = await asyncio.wait_for(aio_pika.connect(settings.amqp_dsn), BROKER_TIMEOUT_SECONDS)
        try:
            await declare_topology(await connection.channel(), topology)
        finally:
            await connection.close()
    return {
        "database": make_url(settings.database_dsn).database,
        "databaseCreated": created,
        "migrated": True,
        "exchange": topology.exchange,
        "queues": [topology.mailer_queue, topology.mailer_dead_letter_queue],
    }


async def run_migrate(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    return await prepare(settings)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "migrate",
        help="create the database if missing, migrate it, declare the RabbitMQ topology",
        description="Idempotent: creates the database named in DATABASE_URL when it is missing, applies "
        "every migration, and declares the events exchange and the mailer's queues on AMQP_URL.",
    )
    parser.set_defaults(handler=run_migrate)
