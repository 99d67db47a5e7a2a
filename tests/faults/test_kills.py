"""A service killed with SIGKILL mid-burst and started again, as an orchestrator restarts a crashed
container: no event lost, no email lost, duplicates counted.

* registration, during a burst of registrations: clients whose connection broke try again (an
  earlier try may have registered them: 3033). What was committed is relayed by whoever runs a
  relay (the restarted service, or confirmation-web's). Its password-hashing workers must not
  outlive it.
* the mailer, during a burst of emails: the events it held go back to the queue; an email it had
  claimed but not recorded as sent goes out once its claim (a lease of MAILER_CLAIM_SECONDS the
  killed mailer no longer renews) has lapsed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from tests.faults.burst import PACED_SECONDS, REGISTRATIONS, Burst, settle, tally
from tests.support.fault_report import report
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("faults")

SETTLE_SECONDS = 120.0
WORKERS_GONE_SECONDS = 10.0


async def test_registration_killed_mid_burst(system, api, make_app, sessions, record_property):
    app = await make_app("Registration Killed", email_confirmation_required=True)
    registration = system.process("registration")
    assert len(registration.group_members()) > 1  # the service and its hashing workers (forkserver…)

    burst = Burst(api, app, label="kill-reg", seconds=PACED_SECONDS, retry=True).start()
    await burst.reached(0.3)
    answered_before = burst.finished
    await registration.kill()
    killed = time.monotonic()
    # Nothing it started outlives it: the hashing workers end with the service.
    await eventually(
        lambda: not registration.group_members(),
        timeout=WORKERS_GONE_SECONDS,
        what="the killed service's hashing workers to exit",
    )
    workers_gone = time.monotonic() - killed
    await registration.start()
    restarted_at = datetime.now(UTC)
    down = time.monotonic() - killed

    await burst.done()
    result = await settle(system, sessions, app.app_id, timeout=SETTLE_SECONDS)
    recovery = (result.last_email_at - restarted_at).total_seconds() if result.last_email_at else None
    line = report(
        record_property,
        "registration SIGKILL",
        registrations=burst.count,
        answered_before_kill=answered_before,
        answers=burst.statuses(),
        clients_retried=sum(1 for a in burst.attempts if a.tries > 1),
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        workers_gone=workers_gone,
        down=down,
        recovery=recovery,
    )

    assert answered_before < burst.count, "the kill came after the burst"
    # Every client got its user registered once: 200, or 3033 for a retry after a try that had
    # registered it before the connection broke.
    assert set(burst.statuses()) <= {"200", "409/3033"}, line
    assert result.registered == burst.count, line
    assert result.lost == 0, line
    assert result.duplicated == 0, line
    assert result.settled, line


async def test_mailer_killed_mid_burst_of_emails(system, api, make_app, sessions, record_property):
    app = await make_app("Mailer Killed", email_confirmation_required=True)
    mailer = system.process("mailer")
    # A backlog first (the mailer stopped cleanly), so the kill meets a burst of emails in full flow;
    # the SMTP server takes a little time per email, as real ones do.
    await mailer.stop()
    burst = Burst(api, app, label="kill-mailer").start()
    await burst.done()
    system.inbox.reply_delay = 0.02
    await mailer.start()
    started = time.monotonic()

    async def some_emailed() -> bool:
        return (await tally(system, sessions, app.app_id)).emailed >= REGISTRATIONS * 0.3

    await eventually(some_emailed, timeout=60, interval=0.02, what="a third of the emails")
    await mailer.kill()
    emailed_before = (await tally(system, sessions, app.app_id)).emailed
    await mailer.start()
    restarted_at = datetime.now(UTC)
    sending_for = time.monotonic() - started

    # An email the killed mailer had claimed is held back until its claim lapses.
    claim = system.settings.mailer_claim_seconds
    result = await settle(system, sessions, app.app_id, timeout=claim + SETTLE_SECONDS)
    recovery = (result.last_email_at - restarted_at).total_seconds() if result.last_email_at else None
    line = report(
        record_property,
        "mailer SIGKILL",
        registrations=burst.count,
        emailed_before_kill=emailed_before,
        registered=result.registered,
        emailed=result.emailed,
        lost=result.lost,
        duplicated=result.duplicated,
        killed_after=sending_for,
        claim=claim,
        recovery=recovery,
    )

    assert burst.statuses() == {"200": burst.count}, line
    assert emailed_before < burst.count, "the kill came after the last email"
    assert result.registered == burst.count, line
    assert result.lost == 0, line
    # An email the SMTP server had accepted just before the kill, not yet recorded as sent, goes out
    # again once its claim lapses: at most one per SMTP connection the killed mailer had open.
    assert result.duplicated <= system.settings.mailer_smtp_connections, line
    assert result.settled, line
