"""Hashing back-pressure through HTTP (the README's Security section): a login flood at OWASP cost is refused with 9009
and a Retry-After at once, rather than queued behind seconds of hashing; the service stays
responsive and a real login gets through shortly after. Logins abandoned by their clients are
dropped from the queue, not hashed (the service as a real process, whose handlers are cancelled on
disconnect). Rate limiting is off in these apps: only the hashing queue pushes back."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from tests.integration.registration.client import Api
from tests.support.polling import free_port
from tests.support.processes import ServiceProcess
from userreg.shared.hashing import Argon2Parameters

OWASP = Argon2Parameters(time_cost=2, memory_kib=19456, parallelism=1)
OWASP_COST = {
    "argon2_memory_kib": OWASP.memory_kib,
    "argon2_time_cost": OWASP.time_cost,
    "argon2_parallelism": OWASP.parallelism,
}
QUEUE_SECONDS = 0.5
FLOOD = 200
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def flood_seconds() -> float:
    """How long hashing the whole flood would take one worker on this machine: what a service
    without back-pressure would make its last request (and the next real login) wait."""
    hasher = OWASP.hasher()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        hasher.hash(PASSWORD)
        timings.append(time.perf_counter() - started)
    return FLOOD * min(timings)


async def _connected(http: aiohttp.ClientSession, health_url: str) -> None:
    """Open FLOOD keep-alive connections, so the flood measures the service rather than the listen
    backlog (128: a connection beyond it waits for a SYN retransmission, a second later)."""

    async def one() -> None:
        async with http.get(health_url) as response:
            assert response.status == 200

    await asyncio.gather(*(one() for _ in range(FLOOD)))


async def _flood_login(
    http: aiohttp.ClientSession, url: str, n: int, refused: asyncio.Event
) -> tuple[int, int, str | None, float]:
    """A login of an unknown identity: (status, code, Retry-After, seconds taken)."""
    started = time.perf_counter()
    async with http.post(url, json={"login": f"nobody.{n}@example.com", "password": "guess"}) as response:
        body = await response.json()
        if body["code"] == 9009:
            refused.set()
        took = time.perf_counter() - started
        return response.status, body["code"], response.headers.get("Retry-After"), took


async def test_a_login_flood_is_refused_at_once_and_the_service_stays_responsive(
    start_service, make_app, unique_email, flood_seconds
):
    client = await start_service(**OWASP_COST, hash_workers=1, hash_queue_seconds=QUEUE_SECONDS)
    api = Api(client, await make_app(client_rate_limit="off"))
    email = unique_email()
    assert (await api.register({"email": email, "password": PASSWORD}))[0] == 200
    refused = asyncio.Event()
    # A session of its own without a connection limit: all of the flood at once, and /health
    # (through the test client's session) never waits for one of its connections.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        await _connected(http, str(client.make_url("/health")))
        url = str(client.make_url(api.path("/users/login")))
        flood = [asyncio.create_task(_flood_login(http, url, n, refused)) for n in range(FLOOD)]
        health: list[float] = []

        async def watch_health() -> None:
            while not all(login.done() for login in flood):
                started = time.perf_counter()
                async with client.get("/health") as response:
                    assert response.status == 200
                health.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch_health())
        await asyncio.wait_for(refused.wait(), timeout=30)
        # Once the queue is full, a real login (retrying on 9009, as a client would) waits at most
        # for what the queue holds.
        started = time.perf_counter()
        while (answer := await api.login(email, PASSWORD))[0] == 503:
            assert answer[1]["code"] == 9009
            await asyncio.sleep(0.05)
        waited = time.perf_counter() - started
        answers = await asyncio.gather(*flood)
        await watcher

    assert answer[0] == 200 and answer[1]["user-token"]
    # The queue holds QUEUE_SECONDS of hashing as timed at start-up; a machine busier now stretches them.
    assert waited < 2 * QUEUE_SECONDS + 1, waited
    assert {(status, code) for status, code, _, _ in answers} <= {(401, 3003), (503, 9009)}
    busy = [(retry_after, took) for status, _, retry_after, took in answers if status == 503]
    assert busy, "the flood never filled the queue"
    assert all(retry_after is not None and int(retry_after) >= 1 for retry_after, _ in busy)
    # Refused without waiting for the hashes ahead (what the event loop takes for the burst remains).
    assert max(took for _, took in busy) < flood_seconds / 3, (sorted(took for _, took in busy)[-5:], flood_seconds)
    # /health never waits for hashing: it answers within what refusing the burst itself costs the
    # event loop (on a loaded machine the first answer, during the burst, can pass half a second).
    assert health and max(health) < max(0.5, flood_seconds / 3), (health, flood_seconds)


@pytest.fixture
async def registration_process(settings) -> Any:
    """`userreg-registration` as a real process (aiohttp cancels the handler of a client that went
    away only there: run_app's handler_cancellation), at OWASP cost with one worker and a queue
    long enough to hold every abandoned login."""
    port = free_port()
    service = ServiceProcess(
        f"registration-backpressure-{uuid.uuid4().hex[:8]}",
        "userreg-registration",
        {
            "DATABASE_URL": settings.database_dsn,
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": settings.events_exchange,
            "PUBLIC_CONFIRMATION_URL": settings.public_confirmation_url,
            "BIND_HOST": "127.0.0.1",
            "REGISTRATION_PORT": str(port),
            "ARGON2_MEMORY_KIB": str(OWASP_COST["argon2_memory_kib"]),
            "ARGON2_TIME_COST": str(OWASP_COST["argon2_time_cost"]),
            "ARGON2_PARALLELISM": str(OWASP_COST["argon2_parallelism"]),
            "HASH_WORKERS": "1",
            "HASH_QUEUE_SECONDS": "30",
            "LOG_LEVEL": "INFO",
        },
        health_url=f"http://127.0.0.1:{port}/health",
    )
    await service.start()
    try:
        yield service, f"http://127.0.0.1:{port}"
    finally:
        if await service.stop(timeout=20) is None:
            service.kill_group()


async def test_logins_whose_clients_gave_up_are_dropped_from_the_queue_not_hashed(
    registration_process, make_app, unique_email, flood_seconds
):
    service, base = registration_process
    app = await make_app(client_rate_limit="off")
    email = unique_email()
    path = f"{base}/{app.app_id}/{app.rest_api_key}/users"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        async with http.post(f"{path}/register", json={"email": email, "password": PASSWORD}) as response:
            assert response.status == 200
        await _connected(http, f"{base}/health")

        async def abandoned_login(n: int) -> None:
            async with http.post(
                f"{path}/login",
                timeout=aiohttp.ClientTimeout(total=0.1),
                json={"login": f"nobody.{n}@example.com", "password": "guess"},
            ) as response:
                await response.read()

        # Hashed, these would keep the worker busy for `flood_seconds` (seconds at OWASP cost).
        gave_up = await asyncio.gather(*(abandoned_login(n) for n in range(FLOOD)), return_exceptions=True)
        assert sum(isinstance(outcome, asyncio.TimeoutError) for outcome in gave_up) > FLOOD // 2, gave_up[:5]
        started = time.perf_counter()
        async with http.post(
            f"{path}/login", json={"login": email, "password": PASSWORD}, timeout=aiohttp.ClientTimeout(total=30)
        ) as response:
            assert response.status == 200, await response.text()
        took = time.perf_counter() - started
    # Ahead of it at most the abandoned requests already in the worker's socket.
    assert took < flood_seconds / 3, (took, flood_seconds)
    assert service.running
