"""`userreg-registration` with WEB_PROCESSES=2, as an operator runs it on a bigger machine: two
server processes share the port, each with its share of the hashing workers; one that dies is
started again while the other serves; SIGTERM stops them all."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

import aiohttp

from tests.support.polling import eventually, free_port
from tests.support.processes import ServiceProcess

PASSWORD = "web processes passphrase 3"


def servers_of(pid: int) -> list[int]:
    """The supervisor's child processes that serve (not the hashing pools' helpers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"userreg-registration" in Path(f"/proc/{child}/cmdline").read_bytes()]


async def test_two_processes_share_the_port_and_a_dead_one_comes_back(settings, make_app, unique_email):
    port = free_port()
    service = ServiceProcess(
        f"registration-processes-{uuid.uuid4().hex[:8]}",
        "userreg-registration",
        {
            "DATABASE_URL": settings.database_dsn,
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": settings.events_exchange,
            "BIND_HOST": "127.0.0.1",
            "REGISTRATION_PORT": str(port),
            "WEB_PROCESSES": "2",
            "HASH_WORKERS": "2",
            "ARGON2_MEMORY_KIB": "8",
            "ARGON2_TIME_COST": "1",
            "LOG_LEVEL": "INFO",
        },
        health_url=f"http://127.0.0.1:{port}/health",
    )
    await service.start()
    try:
        app = await make_app()
        url = f"http://127.0.0.1:{port}/{app.app_id}/{app.rest_api_key}/users/register"

        async def register_many(count: int) -> list[int]:
            async with aiohttp.ClientSession() as http:

                async def one() -> int:
                    async with http.post(url, json={"email": unique_email(), "password": PASSWORD}) as response:
                        return response.status

                return await asyncio.gather(*(one() for _ in range(count)))

        await eventually(lambda: len(servers_of(service.pid)) == 2, timeout=30, what="two server processes")
        assert await register_many(40) == [200] * 40
        first, second = servers_of(service.pid)

        os.kill(first, signal.SIGKILL)
        await eventually(lambda: not _running(first), timeout=10, what="the killed server to be gone")
        assert await register_many(10) == [200] * 10  # the other one serves meanwhile
        await eventually(
            lambda: len(servers_of(service.pid)) == 2 and first not in servers_of(service.pid),
            timeout=30,
            what="the killed server to be started again",
        )
        assert second in servers_of(service.pid)
        await eventually(lambda: _serves(url, unique_email), timeout=30, what="both servers to answer")
    finally:
        assert await service.stop(timeout=60) == 0
    log = service.log_path.read_text()
    assert "serving port" in log and "all 2 server processes stopped" in log
    assert PASSWORD not in log


def _running(pid: int) -> bool:
    """Alive and not a zombie (a dead server's socket is closed even before it is reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _serves(url: str, unique_email) -> bool:
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(10):
            async with http.post(url, json={"email": unique_email(), "password": PASSWORD}) as response:
                statuses.append(response.status)
    return statuses == [200] * 10
