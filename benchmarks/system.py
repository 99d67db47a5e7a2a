"""Whole-system benchmark: signups against everything `make run` starts, and where the CPU goes.

The system runs as `userreg run` runs it (registration, mailer, confirmation-web and the console as
processes of their own, default settings: OWASP argon2id, one hashing worker per core), on a
database and an events exchange of the benchmark's own; the SMTP server is the local inbox, in this
process (the load generator's CPU includes it). Three measurements:

* saturation: BENCH_SYSTEM_CLIENTS (default 16) clients register new users back to back for
  BENCH_SYSTEM_SECONDS (default 20) in an app with default settings; signups/s, p50/p99, the
  argon2id ceiling measured in the same run (before and after, on all cores), the ratio, and the
  CPU each process used meanwhile, in cores: the hashing workers, each service, PostgreSQL,
  RabbitMQ, this load generator. Targets: ≥ 80 % of the ceiling, p99 ≤ 300 ms.
* register → email accepted: signups at 80 % of the saturation rate for BENCH_SYSTEM_EMAIL_SECONDS
  (default 10) in an app that confirms emails; from the request's start to the SMTP server's
  acceptance of the confirmation email, p50/p99 (targets ≤ 50 ms / ≤ 250 ms).
* resident memory of each service's process at rest (after start) and under load (the most seen
  during saturation); targets ≤ 80 MiB and ≤ 150 MiB.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from benchmarks.registration import argon2_ceiling, drive
from benchmarks.scratch import scratch_database
from tests.support.system import System
from userreg.shared.apps import create_app
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.hashing import Argon2Parameters
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings

SERVICES = ("registration", "mailer", "confirmation-web", "console")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20
# What `make run` gives the services, where the test harness would tune them for tests.
PRODUCTION_TUNING = {
    name: Settings.model_fields[name].default
    for name in (
        "mailer_retry_delays",
        "smtp_timeout",
        "mailer_prefetch",
        "outbox_poll_seconds",
        "resend_cooldown_seconds",
    )
}


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) of these processes, the ones that are gone skipped."""
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _pid(system: System, name: str) -> int:
    """The pid of the service's (first) process; the system is started, so it has one."""
    pid = system.processes[name].pid
    assert pid is not None, f"{name} is not running"
    return pid


def _rss_mib(pid: int) -> float:
    return int(_stat(pid)[21]) * PAGE_MIB


def _descendants(pid: int) -> list[int]:
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found += [int(child), *_descendants(int(child))]
    return found


def _named(*names: str) -> list[int]:
    """Every process whose command name is one of these (PostgreSQL's backends, RabbitMQ's VM)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@dataclass
class Groups:
    """The processes whose CPU is counted, by the name the table prints."""

    pids: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, system: System) -> Groups:
        services = {name: _pid(system, name) for name in SERVICES}
        groups = {"hashing workers": _descendants(services["registration"])}
        for name, pid in services.items():
            groups[name] = [pid] if name == "registration" else [pid, *_descendants(pid)]
        groups["PostgreSQL"] = _named("postgres")
        groups["RabbitMQ"] = _named("beam.smp", "erl_child_setup", "epmd")
        groups["load generator + inbox"] = [os.getpid()]
        return cls(groups)

    def cpu(self) -> dict[str, float]:
        return {name: _cpu(pids) for name, pids in self.pids.items()}


async def _make_app(base: Settings, database_url: str, name: str, **app_settings: object):
    engine = create_engine(
        base.model_copy(update={"database_url": SecretStr(database_url)}), pool_size=1, max_overflow=0
    )
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return await create_app(session, name, client_rate_limit="off", **app_settings)
    finally:
        await engine.dispose()


async def _emails_at(system: System, url: str, rate: float, seconds: float) -> list[float]:
    """Register at `rate`/s for `seconds`; milliseconds from each request's start to its email's
    acceptance by the SMTP server."""
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:

        async def one(address: str) -> None:
            sent[address] = time.time()
            async with http.post(url, json={"email": address, "password": "correct horse battery"}) as answer:
                await answer.read()

        tasks = []
        started = time.monotonic()
        for number in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(f"latency-{number}-{uuid.uuid4().hex[:6]}@example.com")))
        await asyncio.gather(*tasks)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        arrived = dict(system.arrivals(sent))
        if len(arrived) == len(sent):
            break
        await asyncio.sleep(0.2)
    return sorted((arrived[address].timestamp() - at) * 1000 for address, at in sent.items() if address in arrived)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def run() -> None:
    base = Settings()
    clients = int(os.environ.get("BENCH_SYSTEM_CLIENTS", "16"))
    seconds = float(os.environ.get("BENCH_SYSTEM_SECONDS", "20"))
    email_seconds = float(os.environ.get("BENCH_SYSTEM_EMAIL_SECONDS", "10"))
    parameters = Argon2Parameters.from_settings(base)
    suffix = uuid.uuid4().hex[:8]
    topology = Topology(f"userreg.bench.{suffix}")
    ceiling_before = await argon2_ceiling(parameters)
    try:
        async with scratch_database(base, f"userreg_bench_system_{suffix}") as database_url:
            settings = base.model_copy(
                update={"database_url": SecretStr(database_url), "events_exchange": topology.exchange}
            )
            system = System(settings, f"bench-{suffix}", with_console=True, **PRODUCTION_TUNING)
            await asyncio.to_thread(system.start)
            try:
                await asyncio.sleep(3)  # at rest: started, nothing asked yet
                at_rest = {name: _rss_mib(_pid(system, name)) for name in SERVICES}
                plain = await _make_app(base, database_url, "Bench system")
                confirming = await _make_app(base, database_url, "Bench emails", email_confirmation_required=True)
                path = "{}/{}/{}/users/register"
                url = path.format(system.registration_url, plain.app_id, plain.rest_api_key)
                await drive(url, clients, 3, f"warm-{suffix}-")
                groups = Groups.of(system)
                before, started = groups.cpu(), time.monotonic()
                peak = dict(at_rest)

                async def sample_memory() -> None:
                    while True:
                        for name in SERVICES:
                            peak[name] = max(peak[name], _rss_mib(_pid(system, name)))
                        await asyncio.sleep(0.5)

                sampler = asyncio.create_task(sample_memory())
                count, elapsed, latencies, failures = await drive(url, clients, seconds, f"bench-{suffix}-")
                sampler.cancel()
                window = time.monotonic() - started
                cores = {name: (used - before[name]) / window for name, used in groups.cpu().items()}
                rate = count / elapsed
                email_url = path.format(system.registration_url, confirming.app_id, confirming.rest_api_key)
                to_email = await _emails_at(system, email_url, 0.8 * rate, email_seconds)
            finally:
                await asyncio.to_thread(system.stop)
    finally:
        await delete_topology(base.amqp_dsn, topology)
    ceiling = (ceiling_before + await argon2_ceiling(parameters)) / 2
    p = parameters
    print(
        f"argon2id m={p.memory_kib},t={p.time_cost},p={p.parallelism}; {clients} clients; {seconds:.0f} s; "
        f"{os.cpu_count()} cores, PostgreSQL, RabbitMQ and this load generator on the same machine"
    )
    print(f"{'signups/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ceiling':>10}{'of ceiling':>12}  target")
    print(
        f"{rate:>10.1f}{statistics.median(latencies):>9.1f}{_percentile(latencies, 0.99):>9.1f}"
        f"{ceiling:>8.1f}/s{rate / ceiling:>11.0%}  ≥ 80 % of the ceiling, p99 ≤ 300 ms"
    )
    if failures:
        print(f"  non-200 answers: {failures}")
    print("CPU in cores during the run: " + ", ".join(f"{name} {used:.2f}" for name, used in cores.items()))
    print(
        f"register → email accepted at {0.8 * rate:.0f} signups/s (80 % of saturation): "
        f"{len(to_email)} emails, p50 {_percentile(to_email, 0.5):.1f} ms, p99 {_percentile(to_email, 0.99):.1f} ms"
        "  (targets ≤ 50 ms, ≤ 250 ms)"
    )
    print(
        "resident memory, MiB (at rest / under load; targets ≤ 80 / ≤ 150): "
        + ", ".join(f"{name} {at_rest[name]:.0f}/{peak[name]:.0f}" for name in SERVICES),
        flush=True,
    )
