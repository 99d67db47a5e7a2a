"""The SMTP server down for a while during a burst of registrations: it stops listening and hangs up
on the mailer's sessions, then comes back on the same port. The mailer retries with growing delays:
every email is delivered once it is back, none twice, none dead-lettered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from tests.faults.burst import PACED_SECONDS, Burst, settle
from tests.support.fault_report import report
from userreg.shared.db.mail import DeadLetter

pytestmark = pytest.mark.xdist_group("faults")

OUTAGE_SECONDS = 4.0
SETTLE_SECONDS = 120.0


async def counter_total(http: aiohttp.ClientSession, url: str, name: str) -> float:
    """The sum of a Prometheus counter's samples (every label) on a `/metrics` page."""
    async with http.get(url) as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == name
        for sample in family.samples
        if sample.name == f"{name}_total"
    )


async def test_smtp_server_down_during_a_burst(system, api, http, make_app, sessions, record_property):
    app = await make_app("SMTP Outage", email_confirmation_required=True)
    metrics_url = f"{system.mailer_url}/metrics"
    retried_before = await counter_total(http, metrics_url, "userreg_mailer_retried")

    burst = Burst(api, app, label="smtp", seconds=PACED_SECONDS).start()
    await burst.reached(0.25)
    await system.stop_smtp_server()
    await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
    await system.start_smtp_server()
    back_at = datetime.now(UTC)

    await burst.done()
    result = await settle(system, sessions, app.app_id, timeout=SETTLE_SECONDS)
    retried = await counter_total(http, metrics_url, "userreg_mailer_retried") - retried_before
    async with sessions() as session:
        dead = await session.scalar(select(func.count()).select_from(DeadLetter).where(DeadLetter.app_id == app.app_id))
    recovery = (result.last_email_at - back_at).total_seconds() if result.last_email_at else None
    line = report(
        record_property,
        "SMTP server down",
        registrations=burst.count,
        answers=burst.statuses(),
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        retried=int(retried),
        dead_lettered=dead,
        outage=OUTAGE_SECONDS,
        recovery=recovery,
    )

    assert burst.statuses() == {"200": burst.count}, line
    assert retried > 0, f"the outage did not meet any email: {line}"
    assert result.registered == burst.count, line
    assert result.lost == 0, line
    assert result.duplicated == 0, line
    assert dead == 0, line
    assert result.settled, line
