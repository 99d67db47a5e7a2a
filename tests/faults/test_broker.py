"""RabbitMQ away while registrations are under way: the registration service's outbox relay, the
mailer and confirmation-web all lose their broker connection (the proxy in front of RabbitMQ is
cut) and get it back a few seconds later. Every registered user gets exactly one email."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from tests.faults.burst import PACED_SECONDS, Burst, settle
from tests.support.fault_report import report
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("faults")

OUTAGE_SECONDS = 3.0
SETTLE_SECONDS = 120.0
# From the broker's return to the last email: reconnecting (aio-pika retries every 5 s) and the
# backlog. An email whose delivery the lost connection interrupted would instead wait out its
# claim (10 × SMTP timeout + 60 s) before anyone sent it.
RECOVERY_LIMIT_SECONDS = 30.0


async def test_rabbitmq_cut_while_registrations_are_under_way(system, api, make_app, sessions, record_property):
    app = await make_app("Broker Cut", email_confirmation_required=True)
    burst = Burst(api, app, label="amqp", seconds=PACED_SECONDS).start()

    await burst.reached(0.25)
    await system.cut("amqp")
    cut_at = time.monotonic()

    async def unready():
        # The API does not need the broker: registrations go on, their events wait in the outbox;
        # /ready says so as soon as the relay has seen its connection go.
        answer = await api.ready()
        return answer if answer.status == 503 else None

    during = await eventually(unready, timeout=OUTAGE_SECONDS, interval=0.05, what="/ready to report the broker away")
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))  # the outage itself
    await system.restore("amqp")
    restored_at = datetime.now(UTC)
    restored = time.monotonic()
    await eventually(lambda: _ready(api), timeout=30, what="registration to be ready again")
    ready_after = time.monotonic() - restored

    await burst.done()
    result = await settle(system, sessions, app.app_id, timeout=SETTLE_SECONDS)
    recovery = (result.last_email_at - restored_at).total_seconds() if result.last_email_at else None
    line = report(
        record_property,
        "RabbitMQ connection cut",
        registrations=burst.count,
        answers=burst.statuses(),
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        outage=OUTAGE_SECONDS,
        ready_again=ready_after,
        recovery=recovery,
    )

    assert (during.status, during.body.get("broker")) == (503, "unreachable"), during
    assert burst.statuses() == {"200": burst.count}, line
    assert result.registered == burst.count, line
    assert result.lost == 0, line
    assert result.duplicated == 0, line
    assert result.settled, line
    assert recovery is not None and recovery < RECOVERY_LIMIT_SECONDS, line


async def _ready(api) -> bool:
    return (await api.ready()).status == 200
