"""Registration benchmark: HTTP registrations per second against one real registration process.

The service (`python -m userreg.registration`, default settings apart from where things are and the
argon2id cost) runs against a database and an events exchange of the benchmark's own, removed
afterwards; its outbox relay publishes every `user.registered` to RabbitMQ as in production. This
process is the load generator: BENCH_REGISTRATION_CONCURRENCY requests in flight on keep-alive
connections, each a new user.

Two modes, side by side, each with the machine's own argon2id ceiling measured in the same run
(hashes/s on all cores with the mode's parameters, one worker process per core, service stopped;
the mean of a measurement just before and one just after the mode's run):

* owasp: m=19456 KiB, t=2, p=1 — hashing dominates; the target is ≥ 75 % of the ceiling.
* minimal: m=8 KiB, t=1, p=1 — everything else dominates; the target is ≥ 500 registrations/s at
  p99 ≤ 100 ms on a 2-core machine, this load generator included.
* minimal-limited: the same with the app's client rate limit on (a limit this load never reaches,
  so every request is counted in PostgreSQL and none refused): the limit's cost; the target is
  within 10 % of minimal. The other modes run with the limit off, as a load test from one address
  must.
* minimal-2-processes: minimal with WEB_PROCESSES=2 (two server processes share the port, one
  hashing worker each): what a second process adds where one event loop is the limit.

Environment: BENCH_REGISTRATION_SECONDS (default 15, per mode), BENCH_REGISTRATION_CONCURRENCY
(default: 8 for owasp, 12 for the others), BENCH_REGISTRATION_MODES (default
"owasp,minimal,minimal-limited,minimal-2-processes").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import statistics
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from benchmarks.scratch import scratch_database, stop
from userreg.shared.apps import create_app
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.hashing import Argon2Parameters
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings

LOG = Path(__file__).resolve().parents[1] / "test-artifacts" / "logs" / "bench-registration.log"
CEILING_SECONDS = 4.0
WARM_UP_REQUESTS = 200


@dataclass(frozen=True)
class Mode:
    name: str
    parameters: Argon2Parameters
    concurrency: int
    target: str
    client_rate_limit: str = "off"
    processes: int = 1


MINIMAL_COST = Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1)
MODES = {
    "owasp": Mode(
        "owasp", Argon2Parameters(time_cost=2, memory_kib=19456, parallelism=1), 8, "≥ 75 % of the argon2id ceiling"
    ),
    "minimal": Mode("minimal", MINIMAL_COST, 12, "≥ 500 registrations/s at p99 ≤ 100 ms"),
    "minimal-limited": Mode(
        "minimal-limited", MINIMAL_COST, 12, "within 10 % of minimal (rate limit on)", client_rate_limit="1000000/60s"
    ),
    "minimal-2-processes": Mode(
        "minimal-2-processes", MINIMAL_COST, 16, "1 vs 2 processes (WEB_PROCESSES=2)", processes=2
    ),
}


@dataclass(frozen=True)
class Result:
    mode: Mode
    ceiling: float
    registrations: int
    seconds: float
    latencies_ms: list[float]
    failures: dict[int, int]
    service_cpu_ms: float

    @property
    def rate(self) -> float:
        return self.registrations / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- the argon2id ceiling ----------------------------------------------------------------------


def _hash_for(parameters: Argon2Parameters, seconds: float) -> int:
    """In a worker process: hash for `seconds`, return how many hashes were made."""
    hasher = parameters.hasher()
    deadline = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < deadline:
        hasher.hash("correct horse battery staple")
        count += 1
    return count


async def argon2_ceiling(parameters: Argon2Parameters) -> float:
    """Hashes per second on all cores: one process per core hashing flat out."""
    cores = os.cpu_count() or 1
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("spawn")) as pool:
        await asyncio.gather(*(loop.run_in_executor(pool, _hash_for, parameters, 0.2) for _ in range(cores)))
        counts = await asyncio.gather(
            *(loop.run_in_executor(pool, _hash_for, parameters, CEILING_SECONDS) for _ in range(cores))
        )
    return sum(counts) / CEILING_SECONDS


# --- the service -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its reaped children (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _service_cpu_seconds(pid: int) -> float:
    """The service's CPU time: its process, and with WEB_PROCESSES > 1 its server processes (the
    forked copies of it, not the hashing workers)."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes()
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    servers = [int(child) for child in children if Path(f"/proc/{child}/cmdline").read_bytes() == command]
    return _cpu_seconds(pid) + sum(_cpu_seconds(server) for server in servers)


@contextlib.asynccontextmanager
async def running_service(env: dict[str, str], port: int):
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "userreg.registration", env={**os.environ, **env}, stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                if process.returncode is not None:
                    raise SystemExit(f"the registration service exited with {process.returncode}; see {LOG}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with http.get(f"http://127.0.0.1:{port}/ready", timeout=aiohttp.ClientTimeout(2)) as answer:
                        if answer.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise SystemExit(f"the registration service did not become ready; see {LOG}")
                await asyncio.sleep(0.1)
        yield process
    finally:
        await stop(process)


async def drive(
    url: str, concurrency: int, seconds: float, prefix: str
) -> tuple[int, float, list[float], dict[int, int]]:
    """`concurrency` clients registering new users back to back for `seconds`."""
    latencies: list[float] = []
    failures: dict[int, int] = {}
    counter = 0
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        stop_at = time.perf_counter() + seconds

        async def client() -> None:
            nonlocal counter
            while time.perf_counter() < stop_at:
                counter += 1
                body = json.dumps(
                    {"email": f"{prefix}{counter}@example.com", "password": "correct horse", "name": "Bench User"}
                )
                started = time.perf_counter()
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()
                    elapsed = (time.perf_counter() - started) * 1000
                if response.status == 200:
                    latencies.append(elapsed)
                else:
                    failures[response.status] = failures.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return len(latencies), time.perf_counter() - started, latencies, failures


async def bench_mode(
    mode: Mode, base: Settings, database_url: str, exchange: str, seconds: float, concurrency: int
) -> Result:
    ceiling_before = await argon2_ceiling(mode.parameters)
    engine = create_engine(
        base.model_copy(update={"database_url": SecretStr(database_url)}), pool_size=1, max_overflow=0
    )
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            app = await create_app(session, f"Bench {mode.name}", client_rate_limit=mode.client_rate_limit)
    finally:
        await engine.dispose()
    port = _free_port()
    env = {
        "DATABASE_URL": database_url,
        "AMQP_URL": base.amqp_dsn,
        "EVENTS_EXCHANGE": exchange,
        "REGISTRATION_PORT": str(port),
        "BIND_HOST": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "ARGON2_MEMORY_KIB": str(mode.parameters.memory_kib),
        "ARGON2_TIME_COST": str(mode.parameters.time_cost),
        "ARGON2_PARALLELISM": str(mode.parameters.parallelism),
        "HASH_WORKERS": "0",
        "WEB_PROCESSES": str(mode.processes),
    }
    url = f"http://127.0.0.1:{port}/{app.app_id}/{app.rest_api_key}/users/register"
    async with running_service(env, port) as service:
        await drive_count(url, concurrency, WARM_UP_REQUESTS, f"warm-{mode.name}-")  # pools and caches warm
        cpu_before = _service_cpu_seconds(service.pid)
        count, elapsed, latencies, failures = await drive(url, concurrency, seconds, f"bench-{mode.name}-")
        cpu_used = _service_cpu_seconds(service.pid) - cpu_before
    # Measured on both sides of the run, so that a change in what else the machine does shows less.
    ceiling = (ceiling_before + await argon2_ceiling(mode.parameters)) / 2
    return Result(mode, ceiling, count, elapsed, latencies, failures, cpu_used / max(count, 1) * 1000)


async def drive_count(url: str, concurrency: int, count: int, prefix: str) -> None:
    """Exactly `count` registrations (for the warm-up)."""
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession() as http:

        async def one(n: int) -> None:
            async with (
                semaphore,
                http.post(url, json={"email": f"{prefix}{n}@example.com", "password": "pw"}) as response,
            ):
                await response.read()

        await asyncio.gather(*(one(n) for n in range(count)))


def report(results: list[Result]) -> None:
    print(
        f"{'mode':<21}{'argon2id':<22}{'ceiling':>12}{'reg/s':>9}{'of ceiling':>12}{'p50 ms':>9}"
        f"{'p99 ms':>9}{'svc CPU/reg':>13}  target"
    )
    for result in results:
        p = result.mode.parameters
        print(
            f"{result.mode.name:<21}{f'm={p.memory_kib},t={p.time_cost},p={p.parallelism}':<22}"
            f"{result.ceiling:>10.0f}/s{result.rate:>9.0f}{result.rate / result.ceiling:>11.0%}"
            f"{statistics.median(result.latencies_ms):>9.1f}{result.percentile(0.99):>9.1f}"
            f"{result.service_cpu_ms:>10.2f} ms  {result.mode.target}",
            flush=True,
        )
        if result.failures:
            print(f"  non-200 answers: {result.failures}", flush=True)
    print(
        f"({os.cpu_count()} cores; one registration process (two in minimal-2-processes) with one hashing worker "
        "per core; PostgreSQL, "
        "RabbitMQ and this load generator on the same machine)",
        flush=True,
    )


async def run() -> None:
    base = Settings()
    seconds = float(os.environ.get("BENCH_REGISTRATION_SECONDS", "15"))
    names = [name.strip() for name in os.environ.get("BENCH_REGISTRATION_MODES", ",".join(MODES)).split(",")]
    unknown = set(names) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown BENCH_REGISTRATION_MODES: {', '.join(sorted(unknown))} (known: {', '.join(MODES)})")
    suffix = uuid.uuid4().hex[:8]
    topology = Topology(f"userreg.bench.{suffix}")
    results = []
    try:
        async with scratch_database(base, f"userreg_bench_registration_{suffix}") as database_url:
            for name in names:
                mode = MODES[name]
                concurrency = int(os.environ.get("BENCH_REGISTRATION_CONCURRENCY", mode.concurrency))
                results.append(await bench_mode(mode, base, database_url, topology.exchange, seconds, concurrency))
                print(f"{name}: {results[-1].rate:.0f} registrations/s measured", flush=True)
    finally:
        await delete_topology(base.amqp_dsn, topology)
    report(results)
