"""The Deliveries page: recent emails with their state (sent, sending, retrying, dead-lettered) and
reason from the mailer's delivery records; the dead letters waiting in the (real) dead-letter
queue with their reasons; replaying one or all of the app's through `mailer.operations`; audit
entries; an unreachable broker shown, not a failure; CSRF refused; reasons shown escaped."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

import aio_pika
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.db.models import AuditEntry
from userreg.shared.events import USER_REGISTERED, Event, EventUser
from userreg.shared.messaging import Topology, declare_topology, delete_topology


@pytest.fixture
async def topology(settings):
    """A topology of the test's own: its dead-letter queue holds only the test's letters."""
    own = Topology(f"userreg.test.console.{uuid.uuid4().hex[:10]}")
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        await declare_topology(await connection.channel(), own)
    finally:
        await connection.close()
    yield own
    await delete_topology(settings.amqp_dsn, own)


@pytest.fixture
async def deliveries_client(topology, start_console, http_client_for):
    """A signed-in client of a console that uses the test's topology."""
    return await http_client_for(await start_console({"events_exchange": topology.exchange}))


def event_of(app, email: str) -> Event:
    return Event(type=USER_REGISTERED, appId=app.app_id,
                 user=EventUser(objectId=str(uuid.uuid4()).upper(), identityProperty="email", identity=email,
                                email=email))


async def park(settings, topology: Topology, event: Event, reason: str = "550 mailbox unavailable") -> None:
    """Put an event in the dead-letter queue as the mailer does when it gives up on it."""
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(event.to_bytes(), message_id=event.id, type=event.type,
                             content_type="application/json", delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                             headers={"x-userreg-reason": reason, "x-app-id": event.app_id}),
            routing_key=topology.mailer_dead_letter_queue)
    finally:
        await connection.close()


async def queued_ids(settings, queue_name: str) -> list[str]:
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        queue = await (await connection.channel()).get_queue(queue_name)
        ids = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            ids.append(message.message_id)
        return ids  # unacknowledged: back in the queue when the channel closes
    finally:
        await connection.close()


async def actions_of(sessions, app_id: str) -> list[tuple[str, dict]]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).where(AuditEntry.app_id == app_id).order_by(AuditEntry.id))
        return [(entry.action, entry.details) for entry in entries]


def row_of(text: str, marker: str) -> str:
    found = re.search(rf"<tr>(?:(?!</tr>).)*{re.escape(marker)}(?:(?!</tr>).)*</tr>", text, re.S)
    assert found is not None, marker
    return found[0]


async def test_recent_emails_with_their_state_and_reason(deliveries_client, make_app, sessions):
    app = await make_app()
    now = datetime.now(timezone.utc)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    async with sessions() as session, session.begin():
        session.add_all([
            MailDelivery(event_id=ids[0], template="confirmation", app_id=app.app_id, status=DeliveryStatus.SENT,
                         attempts=1, created_at=now - timedelta(minutes=5), sent_at=now - timedelta(minutes=5)),
            MailDelivery(event_id=ids[1], template="confirmation", app_id=app.app_id, status=DeliveryStatus.FAILED,
                         attempts=2, last_error="421 <try> later", created_at=now - timedelta(minutes=4)),
            MailDelivery(event_id=ids[2], template="registration", app_id=app.app_id, status=DeliveryStatus.SENDING,
                         attempts=1, created_at=now - timedelta(minutes=3), claimed_until=now + timedelta(minutes=1)),
            MailDelivery(event_id=ids[3], template="confirmation", app_id=app.app_id, status=DeliveryStatus.FAILED,
                         attempts=5, last_error="550 no such user", created_at=now - timedelta(minutes=2)),
            DeadLetter(event_id=ids[3], event_type="user.registered", app_id=app.app_id, reason="550 no such user",
                       attempts=5, payload={}, dead_lettered_at=now - timedelta(minutes=1)),
            # Dead before any email was claimed (a template that does not render).
            DeadLetter(event_id=ids[4], event_type="user.registered", app_id=app.app_id,
                       reason="template: the confirmation template cannot be rendered", attempts=1, payload={},
                       dead_lettered_at=now),
            MailDelivery(event_id=str(uuid.uuid4()), template="confirmation", app_id=(await make_app()).app_id,
                         status=DeliveryStatus.SENT, attempts=1, sent_at=now),
        ])
    page = await deliveries_client.get(f"/apps/{app.app_id}/deliveries")
    assert page.status == 200 and 'data-page="deliveries"' in page.text
    assert '<span class="badge ok">sent</span>' in row_of(page.text, ids[0])
    retrying = row_of(page.text, ids[1])
    assert '<span class="badge warn">retrying</span>' in retrying and "421 &lt;try&gt; later" in retrying
    assert '<span class="badge warn">sending</span>' in row_of(page.text, ids[2])
    dead = row_of(page.text, ids[3])
    assert '<span class="badge bad">dead-lettered</span>' in dead and "550 no such user" in dead
    assert "cannot be rendered" in row_of(page.text, ids[4])
    recent = page.text[page.text.index('id="recent-heading"'):]
    assert recent.count("<tr>") == 1 + 5, "the header and the app's five emails (not another app's)"
    assert page.text.index(ids[4]) < page.text.index(ids[0]), "newest first"


async def test_dead_letters_are_listed_and_replayed_one_or_all(deliveries_client, make_app, settings, topology,
                                                               sessions):
    app, other = await make_app(), await make_app()
    events = [event_of(app, f"dead{n}@example.com") for n in range(3)]
    for event in events:
        await park(settings, topology, event, reason="550 <mailbox> unavailable")
    others = event_of(other, "other@example.com")
    await park(settings, topology, others)
    page = await deliveries_client.get(f"/apps/{app.app_id}/deliveries")
    assert page.status == 200 and "Replay all 3" in page.text
    for event in events:
        assert event.id in page.text
    assert others.id not in page.text and "550 &lt;mailbox&gt; unavailable" in page.text
    assert "dead0@example.com" in page.text

    one = await deliveries_client.post(f"/apps/{app.app_id}/deliveries/replay", {"event_id": events[0].id})
    assert one.status == 200 and "The dead letter was sent back to the mailer" in one.text
    assert await queued_ids(settings, topology.mailer_queue) == [events[0].id]
    assert "Replay all 2" in one.text
    # Another app's letter is not replayed from this app's page.
    elsewhere = await deliveries_client.post(f"/apps/{app.app_id}/deliveries/replay", {"event_id": others.id})
    assert "nothing to replay" in elsewhere.text
    everything = await deliveries_client.post(f"/apps/{app.app_id}/deliveries/replay")
    assert "The dead letters were sent back" in everything.text
    assert sorted(await queued_ids(settings, topology.mailer_queue)) == sorted(event.id for event in events)
    assert await queued_ids(settings, topology.mailer_dead_letter_queue) == [others.id]
    assert "No dead letters" in everything.text
    assert await actions_of(sessions, app.app_id) == [
        ("dead-letters.replay", {"eventIds": [events[0].id], "replayed": 1}),
        ("dead-letters.replay", {"eventIds": [events[1].id, events[2].id], "replayed": 2})]


async def test_replaying_needs_the_csrf_token(deliveries_client, make_app, settings, topology, sessions):
    app = await make_app()
    event = event_of(app, "kept@example.com")
    await park(settings, topology, event)
    refused = await deliveries_client.post(f"/apps/{app.app_id}/deliveries/replay", {}, csrf=False)
    assert refused.status == 403
    cross = await deliveries_client.post(f"/apps/{app.app_id}/deliveries/replay", {},
                                         headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    assert await queued_ids(settings, topology.mailer_dead_letter_queue) == [event.id]
    assert await actions_of(sessions, app.app_id) == []


async def test_an_unreachable_broker_is_shown(make_app, start_console, http_client_for):
    app = await make_app()
    client = await http_client_for(await start_console({"amqp_url": SecretStr("amqp://guest:guest@127.0.0.1:1/")}))
    page = await client.get(f"/apps/{app.app_id}/deliveries")
    assert page.status == 200 and "The dead-letter queue cannot be read: RabbitMQ cannot be reached" in page.text
    replay = await client.post(f"/apps/{app.app_id}/deliveries/replay")
    assert replay.status == 503 and "Nothing was replayed" in replay.text
