"""Confirmation-page benchmark: link opens per second for already-confirmed users.

One real confirmation-web process (`python -m userreg.confirmation_web`, default settings apart from
where things are) against a database and a topology of the benchmark's own, removed afterwards.
BENCH_CONFIRMATION_USERS confirmed users (default 2000) each get a link; BENCH_CONFIRMATION_CONCURRENCY
clients (default 32, keep-alive connections) open those links round-robin for
BENCH_CONFIRMATION_SECONDS (default 10) after a short warm-up. Every answer must be the confirmed
page with status 200. Printed: opens/s, latency p50 / p99 / max, errors. The load generator runs
on the same machine, so its CPU time is part of the figure; the CPU time per open of the service
and of the generator are printed too, as they hold even when other work shares the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from benchmarks.scratch import stop
from userreg.shared.apps import create_app
from userreg.shared.confirmations import issue_confirmation
from userreg.shared.db import (
    User,
    UserStatus,
    create_engine,
    create_sessionmaker,
    drop_database,
    ensure_database,
    migrate,
)
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings
from userreg.shared.tokens import new_guid

LOG = Path(__file__).resolve().parents[1] / "test-artifacts" / "logs" / "bench-confirmation.log"
CONFIRMED_MARK = b'data-page="confirmation-confirmed"'
WARM_UP_SECONDS = 2.0


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; None where /proc is not there."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _make_links(settings: Settings, users: int) -> list[str]:
    """Paths of links of confirmed users of one new app."""
    engine = create_engine(settings)
    sessions = create_sessionmaker(engine)
    paths: list[str] = []
    try:
        async with sessions() as session, session.begin():
            app = await create_app(session, "Benchmark App", email_confirmation_required=True)
            people = [
                User(
                    object_id=new_guid(),
                    app_id=app.app_id,
                    identity_key=f"bench-{n}@example.com",
                    properties={"email": f"bench-{n}@example.com", "name": f"User {n}"},
                    status=UserStatus.ENABLED,
                )
                for n in range(users)
            ]
            session.add_all(people)
            await session.flush()  # the users before their tokens (the models declare no relationships)
            for user in people:
                confirmation = issue_confirmation(session, app, user, settings.public_confirmation_url)
                paths.append(confirmation.url.removeprefix(settings.public_confirmation_url))
    finally:
        await engine.dispose()
    return paths


async def _wait_healthy(base: str, process: asyncio.subprocess.Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"confirmation-web exited with {process.returncode}; see {LOG}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"{base}/health", timeout=aiohttp.ClientTimeout(total=1)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"confirmation-web did not become healthy in {timeout}s; see {LOG}")


async def _load(
    base: str, paths: list[str], concurrency: int, seconds: float, service_pid: int
) -> tuple[list[float], int, float, float | None, float]:
    """Open links round-robin from `concurrency` clients. Returns the latencies and errors of the
    measured window, its length, and the CPU seconds the service and this load generator used in it."""
    latencies: list[float] = []
    errors = 0
    next_path = itertools.cycle(paths)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm_until = time.monotonic() + WARM_UP_SECONDS
        measure_until = warm_until + seconds

        async def client() -> None:
            nonlocal errors
            while (started := time.monotonic()) < measure_until:
                try:
                    async with http.get(base + next(next_path)) as response:
                        body = await response.read()
                        ok = response.status == 200 and CONFIRMED_MARK in body
                except aiohttp.ClientError:
                    ok = False
                finished = time.monotonic()
                if started >= warm_until:
                    if ok:
                        latencies.append(finished - started)
                    else:
                        errors += 1

        async def measure_cpu() -> tuple[float | None, float]:
            await asyncio.sleep(max(0.0, warm_until - time.monotonic()))
            service_start, client_start = _cpu_seconds(service_pid), time.process_time()
            await asyncio.sleep(max(0.0, measure_until - time.monotonic()))
            service_end, client_end = _cpu_seconds(service_pid), time.process_time()
            service = None if service_start is None or service_end is None else service_end - service_start
            return service, client_end - client_start

        cpu, _ = await asyncio.gather(measure_cpu(), asyncio.gather(*(client() for _ in range(concurrency))))
    return latencies, errors, seconds, cpu[0], cpu[1]


async def run() -> None:
    users = _env_int("BENCH_CONFIRMATION_USERS", 2000)
    concurrency = _env_int("BENCH_CONFIRMATION_CONCURRENCY", 32)
    seconds = float(os.environ.get("BENCH_CONFIRMATION_SECONDS", 10))

    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    base_settings = Settings()
    suffix = uuid.uuid4().hex[:8]
    database = f"userreg_bench_confirmation_{suffix}"
    database_url = make_url(base_settings.database_dsn).set(database=database).render_as_string(hide_password=False)
    port = _free_port()
    public_url = f"http://127.0.0.1:{port}"
    # Everything else as the environment says, like the service process below.
    settings = Settings(
        database_url=SecretStr(database_url),
        events_exchange=f"userreg.bench.confirmation.{suffix}",
        public_confirmation_url=public_url,
        confirmation_port=port,
    )
    topology = Topology.from_settings(settings)

    await ensure_database(database_url)
    process: asyncio.subprocess.Process | None = None
    try:
        await migrate(database_url)
        paths = await _make_links(settings, users)
        LOG.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": settings.events_exchange,
            "PUBLIC_CONFIRMATION_URL": public_url,
            "BIND_HOST": "127.0.0.1",
            "CONFIRMATION_PORT": str(port),
            "LOG_LEVEL": "WARNING",
        }
        with LOG.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "userreg.confirmation_web",
                env=env,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        await _wait_healthy(public_url, process)
        latencies, errors, elapsed, service_cpu, client_cpu = await _load(
            public_url, paths, concurrency, seconds, process.pid
        )
    finally:
        if process is not None:
            await stop(process, timeout=20)
        await drop_database(settings.database_dsn)
        # The service's outbox relay declared the topology; quorum queues are costly to leave behind.
        await delete_topology(settings.amqp_dsn, topology)

    latencies.sort()
    print(
        f"already-confirmed link opens: {len(latencies) / elapsed:,.0f} opens/s "
        f"({len(latencies)} in {elapsed:.0f} s, {concurrency} concurrent clients, {users} links, "
        f"1 service process)"
    )
    if latencies:
        print(
            f"latency: p50 {_percentile(latencies, 0.50) * 1000:.1f} ms, "
            f"p99 {_percentile(latencies, 0.99) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms, "
            f"mean {statistics.fmean(latencies) * 1000:.1f} ms"
        )
    print(f"errors (not the confirmed page with 200): {errors}")
    if latencies:
        opens = len(latencies)
        service = "n/a" if service_cpu is None else f"{service_cpu / opens * 1e6:.0f} µs"
        print(
            f"CPU per open: service {service}, load generator {client_cpu / opens * 1e6:.0f} µs "
            f"(machine load average before the run: {load_before})"
        )
