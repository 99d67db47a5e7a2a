"""Two registration, two mailer and two confirmation-web processes against one PostgreSQL and one
RabbitMQ, under a burst of registrations spread over both registration processes, and in the one
run: the broker connection cut for a few seconds, then one mailer and one registration process
SIGKILLed and started again, while the SMTP server takes 0.2 s to answer each message.

Every registered user gets exactly one email, all within 60 s of the last fault; an email goes
out twice only if the server took it in the instant before the kill, without the killed mailer
reading the reply: at most one per SMTP session it had open. A client whose connection broke tries
again, reaching the other registration process; a retry after a try that had committed answers
3033, and that user counts as registered (the tally reads the database).

This system is its own (its own database and events exchange), not the package's: the package's
relays would otherwise publish this burst's events to their own mailer.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.faults.burst import FULL, Burst, RoundRobinApi, settle, tally
from tests.faults.test_mailer_crash import smtp_sessions_of
from tests.support.databases import migrated_database
from tests.support.fault_report import report
from tests.support.polling import eventually
from tests.support.system import System
from userreg.shared.apps import create_app
from userreg.shared.db import create_engine
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings

pytestmark = pytest.mark.xdist_group("faults")

REPLICAS = {"registration": 2, "mailer": 2, "confirmation-web": 2}
REGISTRATIONS = 2000 if FULL else 1000
# Long enough that the kills, after the outage and the broker reconnect (aio-pika retries every
# 5 s), still meet registrations under way.
PACED_SECONDS = REGISTRATIONS / 50
SMTP_REPLY_SECONDS = 0.2
OUTAGE_SECONDS = 3.0
CUT_AT = 0.2  # of the registrations answered
KILL_AT = 0.5
RECOVERY_LIMIT_SECONDS = 60.0
SETTLE_SECONDS = 120.0


@pytest.fixture(autouse=True)
async def whole_system() -> AsyncIterator[None]:
    """(Replaces the package's: this test needs none of the package's system.)"""
    yield


@dataclass
class Replicated:
    system: System
    sessions: async_sessionmaker


@pytest.fixture(scope="module")
def replicas_database(service_urls: tuple[str, str]) -> Iterator[str]:
    with migrated_database(service_urls[0], "userreg_replicas") as url:
        yield url


@pytest.fixture(scope="module")
def replicas_system(settings: Settings, replicas_database: str) -> Iterator[System]:
    base = settings.model_copy(update={"database_url": SecretStr(replicas_database)})
    running = System(
        base,
        "replicas",
        via_proxies=True,
        replicas=REPLICAS,
        events_exchange=f"{settings.events_exchange}.replicas{uuid.uuid4().hex[:6]}",
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        asyncio.run(delete_topology(running.settings.amqp_dsn, Topology.from_settings(running.settings)))
    # Every replica's log, the killed ones' included: none shows a secret.
    assert not running.leaks(), running.leaks()


@pytest.fixture
async def replicated(replicas_system: System) -> AsyncIterator[Replicated]:
    engine = create_engine(replicas_system.settings)
    try:
        yield Replicated(replicas_system, async_sessionmaker(engine, expire_on_commit=False))
    finally:
        await replicas_system.make_whole()
        await engine.dispose()


async def test_two_replicas_of_each_service_through_broker_cut_and_kills(replicated: Replicated, record_property):
    system, sessions = replicated.system, replicated.sessions
    assert {name: len(processes) for name, processes in system.replicas.items()} == REPLICAS
    async with sessions() as session, session.begin():
        app = await create_app(session, "Replicas", email_confirmation_required=True, client_rate_limit="off")
    system.inbox.reply_delay = SMTP_REPLY_SECONDS
    registration, mailer = system.replicas["registration"][0], system.replicas["mailer"][0]

    async with aiohttp.ClientSession() as http:
        api = RoundRobinApi(http, system.registration_urls)
        burst = Burst(api, app, REGISTRATIONS, label="replicas", seconds=PACED_SECONDS, retry=True).start()

        # The broker goes away for a few seconds: both relays, both mailers, both pages lose it.
        await burst.reached(CUT_AT)
        await system.cut("amqp")
        await asyncio.sleep(OUTAGE_SECONDS)
        await system.restore("amqp")
        emailed_at_restore = (await tally(system, sessions, app.app_id)).emailed

        # Then, once emails flow again and the burst is half done, a mailer and a registration
        # process are killed and started again, as an orchestrator restarts crashed containers.
        async def emails_flow_again() -> bool:
            return (await tally(system, sessions, app.app_id)).emailed > emailed_at_restore

        await eventually(emails_flow_again, timeout=60, interval=0.05, what="emails after the broker's return")
        await burst.reached(KILL_AT)
        answered_before_kill = burst.finished
        assert mailer.pid is not None
        sessions_at_kill = smtp_sessions_of(mailer.pid, system.service_settings["mailer"].smtp_port)
        emailed_before_kill = (await tally(system, sessions, app.app_id)).emailed
        last_fault_at = datetime.now(UTC)
        await asyncio.gather(mailer.kill(), registration.kill())
        registration.kill_group()  # its hashing workers (test_kills checks they go by themselves)
        killed = time.monotonic()
        await asyncio.gather(mailer.start(), registration.start())
        down = time.monotonic() - killed

        await burst.done()

    result = await settle(system, sessions, app.app_id, timeout=SETTLE_SECONDS)
    recovery = (result.last_email_at - last_fault_at).total_seconds() if result.last_email_at else None
    line = report(
        record_property,
        "2 replicas each: RabbitMQ cut + mailer & registration SIGKILL, slow SMTP",
        registrations=burst.count,
        answers=burst.statuses(),
        clients_retried=sum(1 for a in burst.attempts if a.tries > 1),
        answered_before_kill=answered_before_kill,
        emailed_before_kill=emailed_before_kill,
        smtp_sessions_at_kill=sessions_at_kill,
        down=down,
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        recovery=recovery,
    )

    assert answered_before_kill < burst.count, "the kill came after the burst"
    assert emailed_before_kill < burst.count, "the kill came after the last email"
    # Every client got its user registered once: 200, or 3033 for a retry after a try that had
    # registered it before the connection broke.
    assert set(burst.statuses()) <= {"200", "409/3033"}, line
    assert result.registered == burst.count, line
    assert result.lost == 0, line
    assert result.settled, line
    # Twice only what the server took in the instant before the kill: one per open session at most.
    assert result.duplicated <= sessions_at_kill, line
    assert recovery is not None and recovery <= RECOVERY_LIMIT_SECONDS, line
