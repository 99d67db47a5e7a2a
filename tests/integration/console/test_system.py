"""The System page: each service's /health and /ready as they answer (or do not), the outbox
backlog as the table holds it, and the depth of every queue of the topology, dead letters included."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import func, select

from tests.integration.console.support import ConsoleClient
from tests.support.polling import free_port
from userreg.shared.db.models import OutboxEvent
from userreg.shared.messaging import Topology, declare_topology, delete_topology


async def _healthy(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _not_ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "unavailable", "database": "ok", "broker": "unreachable"}, status=503)


@pytest.fixture
async def registration_url() -> AsyncIterator[str]:
    """A stand-in registration service: healthy, not ready (its broker is away)."""
    stand_in = web.Application()
    stand_in.router.add_get("/health", _healthy)
    stand_in.router.add_get("/ready", _not_ready)
    server = TestServer(stand_in, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def own_topology(settings) -> AsyncIterator[Topology]:
    """A topology of the test's own (the System page reads the settings' exchange)."""
    topology = Topology(f"userreg.test.system.{uuid.uuid4().hex[:8]}", (5.0,))
    connection = await aio_pika.connect(settings.amqp_dsn)
    async with connection:
        await declare_topology(await connection.channel(), topology)
        yield topology
    await delete_topology(settings.amqp_dsn, topology)


@pytest.fixture
async def system_client(start_console, registration_url, own_topology, http_client_for) -> ConsoleClient:
    nowhere = f"http://127.0.0.1:{free_port()}"
    base_url = await start_console(
        {
            "events_exchange": own_topology.exchange,
            "mailer_retry_delays": "5",
            "console_service_urls": f"registration={registration_url},confirmation-web={nowhere},mailer={nowhere}",
        }
    )
    return await http_client_for(base_url)


def row_of(text: str, name: str) -> str:
    match = re.search(rf"<tr>\s*<td>{re.escape(name)}</td>.*?</tr>", text, re.S)
    assert match, name
    return match[0]


async def test_the_system_page_shows_health_backlog_and_queues(
    system_client, registration_url, own_topology, settings, sessions
):
    connection = await aio_pika.connect(settings.amqp_dsn)
    async with connection:
        channel = await connection.channel()
        for _ in range(2):
            await channel.default_exchange.publish(
                aio_pika.Message(body=b"{}"), routing_key=own_topology.mailer_dead_letter_queue
            )
    async with sessions() as session, session.begin():
        session.add(OutboxEvent(event_id=str(uuid.uuid4()), routing_key="user.test", payload={}))
    async with sessions() as session:
        backlog = await session.scalar(select(func.count()).select_from(OutboxEvent))

    page = await system_client.get("/system")
    assert page.status == 200 and 'data-page="system"' in page.text
    registration = row_of(page.text, "registration")
    assert registration_url in registration, "asked where CONSOLE_SERVICE_URLS says"
    assert '<span class="badge ok">ok</span>' in registration  # health
    assert '<span class="badge bad">HTTP 503</span>' in registration  # ready
    assert "database: ok, broker: unreachable" in registration
    for down in ("confirmation-web", "mailer"):
        assert "unreachable" in row_of(page.text, down)
    assert re.search(rf'id="outbox-backlog">{backlog}<', page.text)
    assert 'id="dead-letters">2<' in page.text
    queues = re.findall(r"<tr>\s*<td><code>([^<]+)</code></td>.*?<td class=\"num\">([^<]+)</td>", page.text, re.S)
    assert dict(queues) == {
        own_topology.mailer_queue: "0",
        own_topology.mailer_dead_letter_queue: "2",
        own_topology.mailer_retry_queue(5.0): "0",
    }


async def test_queues_not_declared_yet_are_said_so(start_console, http_client_for):
    base_url = await start_console({"events_exchange": f"userreg.test.none.{uuid.uuid4().hex[:8]}"})
    page = await (await http_client_for(base_url)).get("/system")
    assert page.status == 200
    assert page.text.count("not declared yet") == 2 + len(Topology("x").mailer_retry_delays)
    assert 'id="dead-letters">—<' in page.text


async def test_an_unreachable_broker_is_said_so(start_console, http_client_for):
    base_url = await start_console({"amqp_url": SecretStr(f"amqp://guest:guest@127.0.0.1:{free_port()}/")})
    page = await (await http_client_for(base_url)).get("/system")
    assert page.status == 200
    assert "RabbitMQ unreachable" in page.text
