"""Never lost: transient failures are retried with delays, permanent ones parked in the dead-letter
queue (and recorded) until an operator replays them."""

from __future__ import annotations

import asyncio
from functools import partial

import aio_pika
from sqlalchemy import update

from tests.integration.mailer.helpers import (
    dead_letter_row,
    delivery_rows,
    make_event,
    running_mailer,
    sent_rows,
    settings_for,
)
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.mailer.consumer import POISON_REDELIVERIES
from userreg.mailer.dead_letters import list_dead_letters, replay
from userreg.shared.db import Template
from userreg.shared.db.mail import DeliveryStatus
from userreg.shared.messaging import Topology, declare_topology


async def test_a_421_is_retried_and_the_email_delivered_once(mailer, publish, inbox, make_app, sessions, counters):
    counters.track("userreg_mailer_retried_total", kind="smtp_4xx")
    app = await make_app(email_confirmation_required=True)
    inbox.fail_next(1, 421)
    event = make_event(app)
    await publish(event)

    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.message_id == f"<{event.id}.confirmation@mail.test>"
    assert counters("userreg_mailer_retried_total", kind="smtp_4xx") == 1
    [row] = await sent_rows(sessions, event.id)
    assert row.attempts == 2
    assert len(inbox.to(event.user.email)) == 1


async def test_a_550_is_dead_lettered_and_replay_sends_it_once_fixed(
    mailer, mail_settings, publish, inbox, make_app, sessions, counters
):
    counters.track("userreg_mailer_dead_lettered_total", kind="smtp_5xx")
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    inbox.reject_recipient(event.user.email)
    await publish(event)

    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    assert row.reason.startswith("recipient refused: 550")
    assert (row.event_type, row.app_id, row.attempts, row.replayed_at) == ("user.registered", app.app_id, 1, None)
    # The table keeps the event for people to read, without the link's token.
    assert row.payload["user"]["email"] == event.user.email
    assert row.payload["confirmation"]["url"].endswith("/confirm/[redacted]")
    assert counters("userreg_mailer_dead_lettered_total", kind="smtp_5xx") == 1
    [delivery] = await delivery_rows(sessions, event.id)
    assert delivery.status is DeliveryStatus.FAILED and "550" in delivery.last_error

    listed = await list_dead_letters(mail_settings)
    assert [(d["eventId"], d["queued"], d["failure"]) for d in listed] == [(event.id, True, "smtp_5xx")]
    assert listed[0]["reason"] == row.reason
    assert inbox.messages == []

    inbox.accept_recipient(event.user.email)  # the cause is fixed
    assert await replay(mail_settings, [event.id]) == 1
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert event.confirmation.url in message.text
    assert await list_dead_letters(mail_settings) == []
    # The history is the deployment's (the database's), which other tests share: look at ours.
    history = [d for d in await list_dead_letters(mail_settings, include_replayed=True) if d["eventId"] == event.id]
    assert [(d["eventId"], d["queued"]) for d in history] == [(event.id, False)]
    assert history[0]["replayedAt"] is not None
    assert await replay(mail_settings, [event.id]) == 0  # nothing left to replay


async def test_replay_picks_only_the_named_events(mailer, mail_settings, publish, inbox, make_app, sessions):
    app = await make_app(email_confirmation_required=True)
    first, second = make_event(app), make_event(app)
    for event in (first, second):
        inbox.reject_recipient(event.user.email)
        await publish(event)
    for event_id in (first.id, second.id):
        await eventually(partial(dead_letter_row, sessions, event_id), what="dead letters recorded")
    for event in (first, second):
        inbox.accept_recipient(event.user.email)

    assert await replay(mail_settings, [second.id, "no-such-event"]) == 1
    await inbox.wait_for(lambda m: m.recipients == [second.user.email])
    assert [d["eventId"] for d in await list_dead_letters(mail_settings)] == [first.id]
    assert await replay(mail_settings, None) == 1
    await inbox.wait_for(lambda m: m.recipients == [first.user.email])
    assert len(inbox.messages) == 2


async def test_retries_run_out_into_the_dead_letter_queue(mailer, publish, inbox, make_app, sessions):
    app = await make_app(email_confirmation_required=True)
    inbox.fail_next(3, 451, "4.3.0 Temporary trouble")
    event = make_event(app)
    await publish(event)
    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    # Two delays configured: the first attempt and two retries, then it is parked.
    assert row.attempts == 3
    assert row.reason.startswith("gave up after 3 attempts; last error: server answered 451")
    assert inbox.messages == []


async def test_a_malformed_event_is_dead_lettered_with_its_reason(mailer, mail_settings, publish, make_app, sessions):
    app = await make_app()
    event = make_event(app)
    await publish(event, body=b'{"id": "x", "type": "user.registered"')
    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    assert row.reason.startswith("not a valid version-1 event")
    assert row.payload == {"raw": '{"id": "x", "type": "user.registered"'}
    [listed] = await list_dead_letters(mail_settings)
    assert listed["failure"] == "malformed"


async def test_an_event_of_an_unknown_app_is_dead_lettered(mailer, publish, make_app, sessions):
    app = await make_app()
    event = make_event(app)
    await publish(event.model_copy(update={"app_id": "00000000-0000-0000-0000-000000000000"}))
    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    assert row.reason == "app 00000000-0000-0000-0000-000000000000 does not exist"


async def test_a_broken_template_is_dead_lettered_and_replayed_after_the_fix(
    mailer, mail_settings, publish, inbox, make_app, sessions
):
    app = await make_app(email_confirmation_required=True)
    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="confirmation",
                locale="",
                text_body="{{ user.name.__class__.__mro__ }}",
            )
        )  # the sandbox refuses this
    event = make_event(app)
    await publish(event)
    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    assert "the confirmation template of app" in row.reason and "SecurityError" in row.reason

    async with sessions() as session, session.begin():
        await session.execute(
            update(Template).where(Template.app_id == app.app_id).values(text_body="Fixed: {{ confirmation_url }}")
        )
    assert await replay(mail_settings) == 1
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.text.strip() == f"Fixed: {event.confirmation.url}"


async def test_smtp_down_for_a_while_then_back_delivers_everything_once(
    settings, inbox, topologies, publish_to, make_app, counters
):
    counters.track("userreg_mailer_retried_total", kind="connection")
    async with TcpProxy("127.0.0.1", inbox.smtp_port) as proxy:
        mail_settings = settings_for(settings, smtp_port=proxy.port, retry_delays="0.2,0.4,0.8,1,1,1,1,1,1,1")
        topologies.append(mail_settings)
        app = await make_app(email_confirmation_required=True)
        events = [make_event(app) for _ in range(20)]
        async with running_mailer(mail_settings):
            publish = await publish_to(mail_settings)
            await publish(events[0])
            await inbox.wait_for()  # the mailer has a pooled connection open now
            await proxy.cut()
            for event in events[1:]:
                await publish(event)
            await eventually(
                lambda: counters("userreg_mailer_retried_total", kind="connection") >= 19,
                what="every email to fail at least once",
            )
            await asyncio.sleep(1)  # down for a while longer, retrying
            await proxy.restore()
            await inbox.wait_for(count=20, timeout=30)
    assert sorted(m.recipients[0] for m in inbox.messages) == sorted(e.user.email for e in events)


async def test_a_message_redelivered_too_often_is_parked_as_poison(
    mailer, mail_settings, amqp_connection, make_app, sessions, inbox
):
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    channel = await amqp_connection.channel(publisher_confirms=True)
    # As the quorum queue marks a message that crashed or stalled ten mailers before.
    await channel.default_exchange.publish(
        aio_pika.Message(
            body=event.to_bytes(),
            message_id=event.id,
            type=event.type,
            headers={"x-delivery-count": POISON_REDELIVERIES},
        ),
        routing_key=Topology.from_settings(mail_settings).mailer_queue,
    )
    await channel.close()
    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    assert row.reason == f"handed out {POISON_REDELIVERIES + 1} times without being settled"
    assert inbox.messages == []


async def test_what_the_broker_dead_lettered_by_itself_is_listed_and_replayable(
    mailer, mail_settings, amqp_connection, make_app, inbox
):
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    topology = Topology.from_settings(mail_settings)
    channel = await amqp_connection.channel(publisher_confirms=True)
    # As the quorum queue's delivery limit leaves it: no reason of ours, only the broker's x-death.
    await channel.default_exchange.publish(
        aio_pika.Message(
            body=event.to_bytes(),
            message_id=event.id,
            type=event.type,
            headers={
                "x-app-id": app.app_id,
                "x-death": [{"reason": "delivery_limit", "queue": topology.mailer_queue, "count": 1}],
            },
        ),
        routing_key=topology.mailer_dead_letter_queue,
    )
    await channel.close()

    [listed] = await list_dead_letters(mail_settings)
    assert (listed["eventId"], listed["appId"], listed["type"]) == (event.id, app.app_id, "user.registered")
    assert listed["reason"] == f"dead-lettered by RabbitMQ: delivery_limit in {topology.mailer_queue}"
    assert listed["payload"]["confirmation"]["url"].endswith("/confirm/[redacted]")
    assert await replay(mail_settings, [event.id]) == 1
    await inbox.wait_for(lambda m: m.recipients == [event.user.email])


async def test_browsing_the_dead_letters_again_and_again_loses_none(mail_settings, amqp_connection, make_app):
    # RabbitMQ 4 counts a quorum queue's messages handed back towards a delivery limit (20 unless
    # declared otherwise) and the dead-letter queue has nowhere to send those past it. Each listing
    # and each replay that skips a letter hands letters back.
    app = await make_app(email_confirmation_required=True)
    events = [make_event(app) for _ in range(2)]
    topology = Topology.from_settings(mail_settings)
    channel = await amqp_connection.channel(publisher_confirms=True)
    await declare_topology(channel, topology)
    for event in events:
        await channel.default_exchange.publish(
            aio_pika.Message(
                body=event.to_bytes(),
                message_id=event.id,
                type=event.type,
                headers={"x-userreg-reason": "550 mailbox unavailable", "x-app-id": app.app_id},
            ),
            routing_key=topology.mailer_dead_letter_queue,
        )
    await channel.close()

    for _ in range(12):
        assert [letter["eventId"] for letter in await list_dead_letters(mail_settings)] == [e.id for e in events]
        assert await replay(mail_settings, [events[1].id + "-not-queued"]) == 0
    assert await replay(mail_settings) == 2
