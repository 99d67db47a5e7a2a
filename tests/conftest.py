"""Fixtures every test shares: a real PostgreSQL database and a real RabbitMQ, isolated per run.
Only a test that asks for one of them connects: the unit tests (tests/unit) need neither.

Each test session (each xdist worker) migrates a database of its own and uses an events exchange
of its own, so runs never see each other's rows or messages, and each test makes its own app.
The local services are used through DATABASE_URL / AMQP_URL; when those are unset and a Docker
engine answers, testcontainers starts them; otherwise the machine's local defaults are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from tests.support.databases import migrated_database
from userreg.shared.apps import create_app
from userreg.shared.db import App, create_engine
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings

# The fault tests' figures are summed up at the end of a run, by the controlling process under xdist.
pytest_plugins = ("tests.support.fault_report", "tests.support.fixtures")

LOCAL_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


def _docker_engine_answers() -> bool:
    """True when a Docker engine answers its ping on the local socket (DOCKER_HOST is honoured)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: object = host.removeprefix("unix://")
        else:
            probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            netloc = host.split("://", 1)[-1]
            address = (netloc.rsplit(":", 1)[0], int(netloc.rsplit(":", 1)[1]))
        with probe:
            probe.settimeout(2)
            probe.connect(address)
            probe.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b" 200 " in probe.recv(64)
    except (OSError, ValueError, IndexError):
        return False


@pytest.fixture(scope="session")
def service_urls() -> Iterator[tuple[str, str]]:
    """(DATABASE_URL, AMQP_URL) of the servers this run talks to."""
    database_url = os.environ.get("DATABASE_URL")
    amqp_url = os.environ.get("AMQP_URL")
    with contextlib.ExitStack() as stack:
        if not (database_url and amqp_url) and _docker_engine_answers():
            if not database_url:
                from testcontainers.postgres import PostgresContainer

                postgres = stack.enter_context(PostgresContainer("postgres:16.6-alpine", driver="asyncpg"))
                database_url = postgres.get_connection_url()
            if not amqp_url:
                from testcontainers.rabbitmq import RabbitMqContainer

                rabbit = stack.enter_context(RabbitMqContainer("rabbitmq:4.1-management"))
                params = rabbit.get_connection_params()
                amqp_url = f"amqp://guest:guest@{params.host}:{params.port}/"
        yield database_url or LOCAL_DATABASE_URL, amqp_url or LOCAL_AMQP_URL


def _unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def database_url(service_urls: tuple[str, str]) -> Iterator[str]:
    """A freshly migrated database of this test session's own, dropped at the end."""
    with migrated_database(service_urls[0], "userreg_test") as url:
        yield url


@pytest.fixture(scope="session")
def events_exchange(service_urls: tuple[str, str]) -> Iterator[str]:
    """An events exchange (and so a topology) of this test session's own, removed at the end."""
    exchange = _unique("userreg.test").replace("_", ".")
    yield exchange
    asyncio.run(delete_topology(service_urls[1], Topology(exchange)))


@pytest.fixture(scope="session")
def settings(database_url: str, service_urls: tuple[str, str], events_exchange: str) -> Settings:
    """Settings pointing at this session's database and exchange. Hashing uses argon2id's cheapest
    parameters to keep tests fast; tests of the OWASP parameters set them explicitly."""
    return Settings(
        database_url=database_url,
        amqp_url=service_urls[1],
        events_exchange=events_exchange,
        public_confirmation_url="http://confirm.test.invalid",
        argon2_memory_kib=8,
        argon2_time_cost=1,
        hash_workers=1,
        outbox_poll_seconds=0.5,
        database_pool_size=5,
    )


@pytest.fixture(scope="session")
def topology(settings: Settings) -> Topology:
    return Topology.from_settings(settings)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
async def make_app(sessions: async_sessionmaker):
    """Create an app of the test's own: `await make_app(email_confirmation_required=True)`. Its
    client rate limit is off (tests send many requests from one address) unless the test sets it."""

    async def make(name: str = "Test App", **app_settings: object) -> App:
        app_settings.setdefault("client_rate_limit", "off")
        async with sessions() as session, session.begin():
            return await create_app(session, name, **app_settings)

    return make


@pytest.fixture
async def amqp_connection(settings: Settings) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    connection = await aio_pika.connect_robust(settings.amqp_dsn)
    yield connection
    await connection.close()


@pytest.fixture
async def event_queue(amqp_connection, topology: Topology):
    """A fresh exclusive queue bound to every event of this session's exchange: what was published."""
    channel = await amqp_connection.channel()
    exchange = await channel.declare_exchange(topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(exchange, "#")
    yield queue
    await channel.close()
