"""Claims are leases: a live mailer renews its claims (a heartbeat every third of the lease) and
never loses one; a crashed one's claims lapse within one lease; a mailer that cannot renew (the
database is away from it) starts no send on its claims. Real PostgreSQL, real SMTP on a socket."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.mailer.helpers import make_event, settings_for
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.mailer.app_lookup import AppLookup
from userreg.mailer.compose import parse_mail_from
from userreg.mailer.delivery_log import DeliveryLog
from userreg.mailer.rules.leases import may_start_send, renewal_interval
from userreg.mailer.rules.policy import (
    DATABASE,
    DATABASE_DEFERRAL_LIMIT,
    PermanentFailure,
    TransientFailure,
    busy_deferral_limit,
    counts_as_attempt,
    deferral_delay,
)
from userreg.mailer.service import Deliverer
from userreg.mailer.smtp import SmtpPool
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

LEASE = 1.5
APP_ID = "00000000-0000-0000-0000-00000000leas"
CONFIRMATION = ("confirmation",)

MakeLog = Callable[..., DeliveryLog]


def test_the_lease_rules():
    assert renewal_interval(15) == 5
    # A send starts only with at least half the lease left: one failed renewal stops sending.
    assert may_start_send(0, 15) and may_start_send(7.5, 15)
    assert not may_start_send(renewal_interval(15) * 2, 15)
    assert busy_deferral_limit(15) == 5
    # Waiting for another mailer's claim: a few seconds each time, never up the retry ladder.
    delays = (5.0, 30.0, 300.0, 1800.0, 7200.0)
    assert {deferral_delay(n, delays, busy_deferral_limit(15)) for n in range(20)} == {5.0}
    # The database away: up to 30 s each time, for as long as it takes.
    assert [deferral_delay(n, delays, DATABASE_DEFERRAL_LIMIT) for n in range(4)] == [5.0, 30.0, 30.0, 30.0]
    assert not counts_as_attempt(TransientFailure(DATABASE, "cannot claim the delivery: OSError"))
    assert counts_as_attempt(TransientFailure("smtp_4xx", "server answered 451"))
    assert counts_as_attempt(PermanentFailure("smtp_5xx", "server answered 550"))


def test_the_claim_setting_defaults_to_15_seconds(monkeypatch):
    monkeypatch.delenv("MAILER_CLAIM_SECONDS", raising=False)
    assert Settings().mailer_claim_seconds == 15
    monkeypatch.setenv("MAILER_CLAIM_SECONDS", "0.5")
    with pytest.raises(ValueError):
        Settings()


@pytest.fixture
async def logs(engine: AsyncEngine) -> AsyncIterator[MakeLog]:
    """`logs("name")`: a delivery log of a mailer of its own (a unique owner), with a short lease."""
    made: list[DeliveryLog] = []

    def make(name: str, *, through: AsyncEngine | None = None, lease: float = LEASE) -> DeliveryLog:
        autocommit = (through or engine).execution_options(isolation_level="AUTOCOMMIT")
        log = DeliveryLog(autocommit, f"{name}:{uuid.uuid4().hex[:8]}", lease)
        made.append(log)
        return log

    yield make
    for log in made:
        await log.close()


@pytest.fixture
async def proxied_engine(settings: Settings) -> AsyncIterator[tuple[TcpProxy, AsyncEngine]]:
    """An engine that reaches PostgreSQL through a proxy the test can cut."""
    async with TcpProxy.in_front_of(settings.database_dsn, 5432) as proxy:
        engine = create_engine(
            settings.model_copy(update={"database_url": SecretStr(proxy.url_through(settings.database_dsn))}),
            pool_pre_ping=False,
        )
        yield proxy, engine
        await engine.dispose()


async def claim_row(engine: AsyncEngine, event_id: str) -> tuple[str, str, float]:
    """(status, claimed_by, seconds the claim has left) of the event's confirmation email."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text(
                    "SELECT CAST(status AS text), claimed_by, "
                    "       extract(epoch FROM claimed_until - clock_timestamp()) "
                    "FROM mail_deliveries WHERE event_id = :event_id AND template = 'confirmation'"
                ),
                {"event_id": event_id},
            )
        ).one()
    return row[0], row[1], float(row[2])


async def test_a_live_claimant_keeps_its_claim_past_the_lease(logs, engine):
    ours, theirs = logs("ours"), logs("theirs")
    event_id = str(uuid.uuid4())
    assert (await ours.claim(event_id, APP_ID, CONFIRMATION)).claimed == CONFIRMATION

    until = time.monotonic() + 3 * LEASE
    while time.monotonic() < until:
        # Another mailer finds it busy however long ours holds it, and ours may send at any time.
        assert (await theirs.claim(event_id, APP_ID, CONFIRMATION)).busy == CONFIRMATION
        ours.ensure_claim(event_id, "confirmation")
        await asyncio.sleep(0.1)
    status, claimed_by, left = await claim_row(engine, event_id)
    assert status == "SENDING" and claimed_by.startswith("ours:")
    assert LEASE - renewal_interval(LEASE) - 0.2 < left <= LEASE

    await ours.mark_sent(event_id, "confirmation")
    assert (await theirs.claim(event_id, APP_ID, CONFIRMATION)).already_sent == CONFIRMATION


async def test_a_claimant_that_stops_renewing_loses_its_claim_within_one_lease(logs, engine):
    ours, theirs = logs("ours"), logs("theirs")
    event_id = str(uuid.uuid4())
    await ours.claim(event_id, APP_ID, CONFIRMATION)
    await asyncio.sleep(LEASE)  # renewed meanwhile
    await ours.close()  # its heartbeat stops, as a crashed mailer's does
    stopped = time.monotonic()

    async def taken() -> bool:
        return (await theirs.claim(event_id, APP_ID, CONFIRMATION)).claimed == CONFIRMATION

    await eventually(taken, timeout=2 * LEASE, interval=0.02, what="the lapsed claim to be taken")
    taken_after = time.monotonic() - stopped
    # Its last renewal was at most a renewal interval before it stopped; the lease ran from there.
    assert LEASE - renewal_interval(LEASE) - 0.2 <= taken_after <= LEASE + 0.3
    status, claimed_by, _ = await claim_row(engine, event_id)
    assert status == "SENDING" and claimed_by.startswith("theirs:")


async def test_a_claimant_whose_renewals_fail_starts_no_send(proxied_engine, logs, engine):
    proxy, through_proxy = proxied_engine
    ours, theirs = logs("ours", through=through_proxy), logs("theirs")
    event_id = str(uuid.uuid4())
    await ours.claim(event_id, APP_ID, CONFIRMATION)
    ours.ensure_claim(event_id, "confirmation")

    await proxy.cut()  # the database is away for this mailer only
    await asyncio.sleep(LEASE / 2 + 0.1)
    with pytest.raises(TransientFailure) as refused:
        ours.ensure_claim(event_id, "confirmation")
    assert refused.value.kind == DATABASE and not counts_as_attempt(refused.value)

    # The lease lapses and a mailer that reaches the database takes the email.
    async def taken() -> bool:
        return (await theirs.claim(event_id, APP_ID, CONFIRMATION)).claimed == CONFIRMATION

    await eventually(taken, timeout=2 * LEASE, interval=0.05, what="the lapsed claim to be taken")
    # Back in touch, ours renews no claim that is not its own any more, and so never sends on it.
    await proxy.restore()

    async def renewed() -> bool:
        try:
            await ours.renew()  # (the pool's first tries may meet connections the cut broke)
        except DBAPIError:
            return False
        return True

    await eventually(renewed, what="a renewal to get through")
    with pytest.raises(TransientFailure):
        ours.ensure_claim(event_id, "confirmation")
    assert (await claim_row(engine, event_id))[1].startswith("theirs:")


async def test_a_send_does_not_start_once_renewals_have_failed(
    settings, proxied_engine, logs, inbox, make_app, sessions
):
    """An event with two emails, sent one after the other on one claim. The database goes away
    while the first is being sent: the second is not started (the claim might lapse under it);
    the event's next delivery sends it once the database is back, and neither goes out twice."""
    proxy, through_proxy = proxied_engine
    mail_settings = settings_for(settings, smtp_port=inbox.smtp_port)
    app = await make_app(email_confirmation_required=True, welcome_email_enabled=True)
    event = make_event(app)
    templates = TemplateStore.from_settings(mail_settings)
    smtp = SmtpPool(mail_settings)
    deliverer = Deliverer(
        apps=AppLookup(
            create_sessionmaker(through_proxy.execution_options(isolation_level="AUTOCOMMIT")), templates, ttl=0
        ),
        templates=templates,
        deliveries=logs("ours", through=through_proxy),
        sender=smtp,
        mail_from=parse_mail_from(mail_settings.mail_from),
    )
    inbox.reply_delay = LEASE  # each email takes longer to accept than may_start_send allows
    try:
        delivery = asyncio.create_task(deliverer.deliver(event))

        async def claimed() -> bool:
            async with sessions() as session:
                return (
                    await session.scalar(
                        text("SELECT count(*) FROM mail_deliveries WHERE event_id = :id AND status = 'SENDING'"),
                        {"id": event.id},
                    )
                    == 2
                )

        await eventually(claimed, interval=0.01, what="both emails claimed")
        await proxy.cut()
        with pytest.raises(TransientFailure) as failed:
            await delivery
        assert failed.value.kind == DATABASE and "not sending" in failed.value.reason
        assert [m.message_id for m in inbox.messages] == [f"<{event.id}.confirmation@mail.test>"]

        await proxy.restore()
        inbox.reply_delay = 0.0

        async def delivered() -> bool:
            # As the event's redeliveries would: the welcome email once its unrenewed claim lapsed,
            # the confirmation recognised as sent once its record got through.
            try:
                outcome = await deliverer.deliver(event)
            except TransientFailure:
                return False
            return not outcome.busy

        await eventually(delivered, timeout=20, interval=0.2, what="both emails handled")
        assert sorted(m.message_id for m in inbox.messages) == [
            f"<{event.id}.confirmation@mail.test>",
            f"<{event.id}.registration@mail.test>",
        ]
    finally:
        await smtp.close()
