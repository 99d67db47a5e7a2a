"""Three mailers with the default claim settings (MAILER_CLAIM_SECONDS 15, SMTP_TIMEOUT 30, the
default retry delays), one SIGKILLed in the middle of a burst of confirmation emails to an SMTP
server that takes 0.2 s to answer each message: every email arrives, all within 30 s of the kill,
and an email goes out twice only if the server took it in the instant before the kill, without the
killed mailer reading the reply: at most one per SMTP session it had open.

The killed mailer's claims lapse within one lease of its last renewal (a heartbeat renews them
every 5 s while it lives); the events it held go back to the queue at once, and their copies that
meet a claim still held are looked at again every 5 s, never pushed up the retry ladder.

The mailers reach the SMTP server (and RabbitMQ) through TCP proxies, as across a network.
This system is its own (its own database and events exchange, its own tuning), not the package's:
the package's relays would otherwise publish this burst's events to their own mailer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.faults.burst import FULL, Burst, settle, tally
from tests.support.api import PASSWORD, Api
from tests.support.databases import migrated_database
from tests.support.fault_report import report
from tests.support.polling import eventually, free_port
from tests.support.processes import ServiceProcess
from tests.support.system import LEAKS, System
from userreg.shared.apps import create_app
from userreg.shared.db import create_engine
from userreg.shared.db.mail import MailDelivery
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings

pytestmark = pytest.mark.xdist_group("faults")

EMAILS = 600 if FULL else 300
MAILERS = 3
SMTP_REPLY_SECONDS = 0.2
KILL_AT = 0.3  # of the emails sent
RECOVERY_LIMIT_SECONDS = 30.0
SETTLE_SECONDS = 120.0
DEFAULTS = Settings.model_construct()  # the declared defaults, whatever this machine's environment says


@pytest.fixture(autouse=True)
async def whole_system() -> AsyncIterator[None]:
    """(Replaces the package's: this test needs none of the package's system.)"""
    yield


@dataclass
class CrashSystem:
    system: System
    mailers: list[ServiceProcess]
    sessions: async_sessionmaker


@pytest.fixture(scope="module")
def crash_database(service_urls: tuple[str, str]) -> Iterator[str]:
    with migrated_database(service_urls[0], "userreg_crash") as url:
        yield url


@pytest.fixture(scope="module")
def crash_system(settings: Settings, crash_database: str) -> Iterator[System]:
    base = settings.model_copy(update={"database_url": SecretStr(crash_database)})
    running = System(
        base,
        "mailer-crash",
        via_proxies=True,
        events_exchange=f"{settings.events_exchange}.crash{uuid.uuid4().hex[:6]}",
        # The defaults, where the package's systems shorten them.
        smtp_timeout=DEFAULTS.smtp_timeout,
        mailer_retry_delays=DEFAULTS.mailer_retry_delays,
        mailer_prefetch=DEFAULTS.mailer_prefetch,
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        asyncio.run(delete_topology(running.settings.amqp_dsn, Topology.from_settings(running.settings)))
    assert not running.leaks(), running.leaks()


@pytest.fixture
async def crash(crash_system: System) -> AsyncIterator[CrashSystem]:
    """The system with `MAILERS` mailers (replicas of its own, each on a port of its own)."""
    first = crash_system.process("mailer")
    replicas = []
    for number in range(2, MAILERS + 1):
        port = free_port()
        replicas.append(
            ServiceProcess(
                f"{first.name}-{number}",
                first.script,
                {**first.env, "MAILER_PORT": str(port)},
                f"http://127.0.0.1:{port}/health",
            )
        )
    engine = create_engine(crash_system.settings)
    try:
        for replica in replicas:
            replica.log_path.write_bytes(b"")
            await replica.start()
        yield CrashSystem(crash_system, [first, *replicas], async_sessionmaker(engine, expire_on_commit=False))
    finally:
        for replica in replicas:
            await replica.stop()
            replica.kill_group()
        if not first.running:
            first.kill_group()
            await first.start()
        crash_system.inbox.reply_delay = 0.0
        await engine.dispose()
    # The replicas' logs, like the system's own: no secret in them.
    logs = {replica.log_path.name: replica.log_path.read_text(errors="replace") for replica in replicas}
    leaks = [
        f"{name}: {what}" for name, log in logs.items() for what, pattern in LEAKS.items() if pattern.search(log)
    ] + [f"{name}: a password" for name, log in logs.items() if PASSWORD in log]
    assert not leaks, leaks


def smtp_sessions_of(pid: int, smtp_port: int) -> int:
    """The established TCP connections the process has to the SMTP port: its open SMTP sessions,
    each carrying at most one transaction (Linux /proc)."""
    sockets = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            if target.startswith("socket:["):
                sockets.add(target[len("socket:[") : -1])
    sessions = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if fields[3] == "01" and fields[9] in sockets and remote_port == smtp_port:
                    sessions += 1
    return sessions


async def test_a_crashed_mailers_emails_go_out_within_30_seconds(crash: CrashSystem, record_property):
    system, mailers, sessions = crash.system, crash.mailers, crash.sessions
    settings = system.settings
    assert (settings.mailer_claim_seconds, settings.smtp_timeout) == (
        DEFAULTS.mailer_claim_seconds,
        DEFAULTS.smtp_timeout,
    )
    async with sessions() as session, session.begin():
        app = await create_app(session, "Mailer Crash", email_confirmation_required=True, client_rate_limit="off")

    # A backlog first (the mailers stopped cleanly), so the kill meets a burst in full flow.
    for mailer in mailers:
        await mailer.stop()
    async with aiohttp.ClientSession() as http:
        burst = Burst(Api(http, system.registration_url), app, EMAILS, label="crash").start()
        await burst.done()
    system.inbox.reply_delay = SMTP_REPLY_SECONDS
    await asyncio.gather(*(mailer.start() for mailer in mailers))
    started = time.monotonic()

    async def some_emailed() -> bool:
        return (await tally(system, sessions, app.app_id)).emailed >= EMAILS * KILL_AT

    await eventually(some_emailed, timeout=120, interval=0.02, what=f"{KILL_AT:.0%} of the emails")
    victim = mailers[0]
    assert victim.pid is not None
    sessions_at_kill = smtp_sessions_of(victim.pid, system.service_settings["mailer"].smtp_port)
    killed_at = datetime.now(UTC)
    await victim.kill()
    killed_after = time.monotonic() - started
    emailed_before = (await tally(system, sessions, app.app_id)).emailed

    result = await settle(system, sessions, app.app_id, timeout=SETTLE_SECONDS)
    recovery = (result.last_email_at - killed_at).total_seconds() if result.last_email_at else None
    async with sessions() as session:
        # Emails claimed more than once: the killed mailer's claims that lapsed and were taken over.
        taken_over = await session.scalar(
            select(func.count())
            .select_from(MailDelivery)
            .where(MailDelivery.app_id == app.app_id, MailDelivery.attempts > 1)
        )
    line = report(
        record_property,
        f"mailer SIGKILL, {MAILERS} replicas, default claims",
        emails=EMAILS,
        lease=settings.mailer_claim_seconds,
        smtp_timeout=settings.smtp_timeout,
        emailed_before_kill=emailed_before,
        killed_after=killed_after,
        smtp_sessions_at_kill=sessions_at_kill,
        claims_taken_over=taken_over,
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        recovery=recovery,
    )

    assert burst.statuses() == {"200": EMAILS}, line
    assert emailed_before < EMAILS, "the kill came after the last email"
    assert result.registered == EMAILS, line
    assert result.lost == 0, line
    assert result.settled, line
    assert recovery is not None and recovery <= RECOVERY_LIMIT_SECONDS, line
    # Twice only what the server took in the instant before the kill: one per open session at most.
    assert result.duplicated <= sessions_at_kill, line
