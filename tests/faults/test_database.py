"""PostgreSQL unreachable for the registration service (the proxy between them is cut) during a
burst: register answers a clear 503 with code 3021, nobody is half-created, and when the database
is back the service recovers by itself, without a restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.burst import PACED_SECONDS, Burst, settle, users_of, users_without_link
from tests.support.api import PASSWORD
from tests.support.fault_report import report
from tests.support.polling import eventually
from tests.support.system import unique_address

pytestmark = pytest.mark.xdist_group("faults")

OUTAGE_SECONDS = 3.0
SETTLE_SECONDS = 120.0
RECOVERY_LIMIT_SECONDS = 15.0


async def test_postgresql_unreachable_then_back(system, api, make_app, sessions, record_property):
    app = await make_app("Database Outage", email_confirmation_required=True)
    registration = system.process("registration")
    pid = registration.pid

    burst = Burst(api, app, label="pg", seconds=PACED_SECONDS).start()
    await burst.reached(0.25)
    await system.cut("database")
    cut_at = time.monotonic()

    tried_during = [unique_address("pg-during") for _ in range(5)]
    during = [await api.register(app, {"email": address, "password": PASSWORD}) for address in tried_during]
    ready_during = await api.ready()
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))  # the rest of the outage
    await system.restore("database")
    restored = time.monotonic()

    tried_after: list[str] = []

    async def registers() -> bool:
        tried_after.append(unique_address("pg-after"))
        return (await api.register(app, {"email": tried_after[-1], "password": PASSWORD})).status == 200

    await eventually(registers, timeout=60, interval=0.2, what="register to work again")
    recovery = time.monotonic() - restored
    await eventually(lambda: _ready(api), timeout=60, interval=0.2, what="/ready to say ready")
    ready_again = time.monotonic() - restored

    await burst.done()
    result = await settle(system, sessions, app.app_id, timeout=SETTLE_SECONDS)
    users = set(await users_of(sessions, app.app_id))
    half_created = await users_without_link(sessions, app.app_id)
    refused = [a for a in burst.attempts if a.status != 200]
    line = report(
        record_property,
        "PostgreSQL unreachable",
        registrations=burst.count,
        answers=burst.statuses(),
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        half_created=half_created,
        outage=OUTAGE_SECONDS,
        recovery=recovery,
        ready_again=ready_again,
    )

    # While it is away: a clear answer, in the envelope, and nothing is written.
    for answer in during:
        assert (answer.status, answer.code) == (503, 3021), answer
        assert answer.is_envelope() and "database" in answer.body["message"].lower(), answer
    assert ready_during.status == 503 and ready_during.body["database"] == "unreachable", ready_during
    assert not users & set(tried_during), line
    # The burst's answers: 200, or 3021 in the envelope; every 200 is a whole user, and nobody else
    # is half there.
    assert refused, f"the outage met no registration: {line}"
    assert all(a.code == 3021 and a.envelope and a.status in (500, 503) for a in refused), burst.statuses()
    assert {a.address for a in burst.answered(200)} <= users, line
    assert half_created == 0, line
    # Back by itself: same process, and everyone who is registered gets their email once.
    assert registration.running and registration.pid == pid
    assert recovery < RECOVERY_LIMIT_SECONDS, line
    assert result.lost == 0, line
    assert result.duplicated == 0, line
    assert result.settled, line


async def _ready(api) -> bool:
    return (await api.ready()).status == 200
