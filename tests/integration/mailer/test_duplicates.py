"""Never twice: however often an event arrives, and however many mailers run, each of its emails
is sent once."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, insert, text

from tests.integration.mailer.helpers import make_event, running_mailer, sent_rows
from tests.support.polling import eventually
from userreg.shared.db.mail import DeliveryStatus, MailDelivery


async def test_the_same_event_published_twice_gives_one_email(mailer, publish, inbox, make_app, counters):
    counters.track("userreg_mailer_duplicates_total", template="confirmation")
    counters.track("userreg_mailer_events_total", outcome="duplicate")
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    await publish(event)
    await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    await publish(event)
    await eventually(
        lambda: counters("userreg_mailer_events_total", outcome="duplicate") == 1,
        what="the second copy to be recognised",
    )
    assert counters("userreg_mailer_duplicates_total", template="confirmation") == 1
    assert len(inbox.to(event.user.email)) == 1


async def test_two_copies_in_flight_at_once_give_one_email(mailer, publish, inbox, make_app, counters):
    counters.track("userreg_mailer_events_total", outcome="duplicate")
    counters.track("userreg_mailer_events_total", outcome="deferred")
    app = await make_app(email_confirmation_required=True, welcome_email_enabled=True)
    inbox.reply_delay = 0.3  # the first copy is still being sent when the second arrives
    event = make_event(app)
    await asyncio.gather(publish(event), publish(event))
    await eventually(
        lambda: counters("userreg_mailer_events_total", outcome="duplicate") == 1,
        timeout=20,
        what="the second copy to be recognised",
    )
    assert sorted(m.message_id for m in inbox.to(event.user.email)) == [
        f"<{event.id}.confirmation@mail.test>",
        f"<{event.id}.registration@mail.test>",
    ]
    assert counters("userreg_mailer_events_total", outcome="deferred") >= 1


async def test_many_replicas_send_each_email_once(mail_settings, publish, inbox, make_app, sessions):
    app = await make_app(email_confirmation_required=True)
    events = [make_event(app) for _ in range(40)]
    async with running_mailer(mail_settings), running_mailer(mail_settings), running_mailer(mail_settings):
        # Every event twice, as after a relay that published again before its delete committed.
        await asyncio.gather(*(publish(event) for event in events + events))
        await inbox.wait_for(count=40, timeout=30)

        async def settled():
            async with sessions() as session:
                return (
                    await session.scalar(
                        text("SELECT count(*) FROM mail_deliveries WHERE event_id = ANY(:ids) AND status = 'SENT'"),
                        {"ids": [event.id for event in events]},
                    )
                    == 40
                )

        await eventually(settled, what="every delivery recorded")
    # Every copy has been settled once the mailers stopped; still one email per event.
    assert sorted(m.recipients[0] for m in inbox.messages) == sorted(event.user.email for event in events)


async def test_an_email_claimed_by_a_crashed_mailer_is_sent_when_its_claim_runs_out(
    mailer, publish, inbox, make_app, sessions, counters
):
    counters.track("userreg_mailer_events_total", outcome="deferred")
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    async with sessions() as session, session.begin():
        # Another mailer claimed it and died before sending (its claim has a second left).
        await session.execute(
            insert(MailDelivery).values(
                event_id=event.id,
                template="confirmation",
                app_id=app.app_id,
                status=DeliveryStatus.SENDING,
                attempts=1,
                claimed_by="crashed-mailer",
                claimed_until=func.now() + text("interval '1 second'"),
            )
        )
    await publish(event)
    [_message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email], timeout=15)
    assert counters("userreg_mailer_events_total", outcome="deferred") >= 1
    [row] = await sent_rows(sessions, event.id)
    assert row.attempts == 2 and row.claimed_by != "crashed-mailer"
