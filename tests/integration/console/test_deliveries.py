"""The Deliveries pages: emails with their state (sent, sending, retrying, dead-lettered), reason and
recipient from the mailer's delivery records, filtered by app and state, paged newest first; the
dead letters waiting in the (real) dead-letter queue with their reasons; replaying one or all of
the app's through `mailer.operations`; audit entries; an unreachable broker shown, not a failure;
CSRF refused; reasons shown escaped."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from userreg.console.rules.deliveries import PAGE_SIZE
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
    return Event(
        type=USER_REGISTERED,
        appId=app.app_id,
        user=EventUser(objectId=str(uuid.uuid4()).upper(), identityProperty="email", identity=email, email=email),
    )


async def park(settings, topology: Topology, event: Event, reason: str = "550 mailbox unavailable") -> None:
    """Put an event in the dead-letter queue as the mailer does when it gives up on it."""
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        channel = await connection.channel()
        await channel.default_exchange.publish(
            aio_pika.Message(
                event.to_bytes(),
                message_id=event.id,
                type=event.type,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={"x-userreg-reason": reason, "x-app-id": event.app_id},
            ),
            routing_key=topology.mailer_dead_letter_queue,
        )
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


async def test_emails_with_their_state_reason_and_recipient(deliveries_client, make_app, sessions):
    app = await make_app()
    now = datetime.now(UTC)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    async with sessions() as session, session.begin():
        session.add_all(
            [
                MailDelivery(
                    event_id=ids[0],
                    template="confirmation",
                    app_id=app.app_id,
                    status=DeliveryStatus.SENT,
                    attempts=1,
                    created_at=now - timedelta(minutes=5),
                    sent_at=now - timedelta(minutes=5),
                ),
                MailDelivery(
                    event_id=ids[1],
                    template="confirmation",
                    app_id=app.app_id,
                    status=DeliveryStatus.FAILED,
                    attempts=2,
                    last_error="421 <try> later",
                    created_at=now - timedelta(minutes=4),
                ),
                MailDelivery(
                    event_id=ids[2],
                    template="registration",
                    app_id=app.app_id,
                    status=DeliveryStatus.SENDING,
                    attempts=1,
                    created_at=now - timedelta(minutes=3),
                    claimed_until=now + timedelta(minutes=1),
                ),
                MailDelivery(
                    event_id=ids[3],
                    template="confirmation",
                    app_id=app.app_id,
                    status=DeliveryStatus.FAILED,
                    attempts=5,
                    last_error="550 no such user",
                    created_at=now - timedelta(minutes=2),
                ),
                DeadLetter(
                    event_id=ids[3],
                    event_type="user.registered",
                    app_id=app.app_id,
                    reason="550 no such user",
                    attempts=5,
                    payload={"user": {"email": "Gone.User@example.com"}},
                    dead_lettered_at=now - timedelta(minutes=1),
                ),
                # Dead before any email was claimed (a template that does not render).
                DeadLetter(
                    event_id=ids[4],
                    event_type="user.registered",
                    app_id=app.app_id,
                    reason="template: the confirmation template cannot be rendered",
                    attempts=1,
                    payload={"user": {"email": "<b>odd</b>@example.com"}},
                    dead_lettered_at=now,
                ),
                MailDelivery(
                    event_id=str(uuid.uuid4()),
                    template="confirmation",
                    app_id=(await make_app()).app_id,
                    status=DeliveryStatus.SENT,
                    attempts=1,
                    sent_at=now,
                ),
            ]
        )
    page = await deliveries_client.get(f"/apps/{app.app_id}/deliveries")
    assert page.status == 200 and 'data-page="deliveries"' in page.text
    assert '<span class="badge ok">sent</span>' in row_of(page.text, ids[0])
    retrying = row_of(page.text, ids[1])
    assert '<span class="badge warn">retrying</span>' in retrying and "421 &lt;try&gt; later" in retrying
    assert '<span class="badge warn">sending</span>' in row_of(page.text, ids[2])
    dead = row_of(page.text, ids[3])
    assert '<span class="badge bad">dead-lettered</span>' in dead and "550 no such user" in dead
    assert "Gone.User@example.com" in dead, "the full address: operators may see it"
    undelivered = row_of(page.text, ids[4])
    assert "cannot be rendered" in undelivered and "&lt;b&gt;odd&lt;/b&gt;@example.com" in undelivered
    assert "not recorded" in row_of(page.text, ids[0])
    emails = page.text[page.text.index('id="recent-heading"') :]
    assert emails.count("<tr>") == 1 + 5, "the header and the app's five emails (not another app's)"
    assert page.text.index(ids[4]) < page.text.index(ids[0]), "newest first"

    dead_only = await deliveries_client.get(f"/apps/{app.app_id}/deliveries?state=dead-lettered")
    listed = dead_only.text[dead_only.text.index('id="recent-heading"') :]
    assert ids[3] in listed and ids[4] in listed and ids[0] not in listed and ids[1] not in listed
    assert '<option value="dead-lettered" selected>' in dead_only.text
    retrying_only = await deliveries_client.get(f"/apps/{app.app_id}/deliveries?state=retrying")
    assert ids[1] in retrying_only.text and ids[0] not in retrying_only.text
    unknown_state = await deliveries_client.get(f"/apps/{app.app_id}/deliveries?state=<lost>&page=x")
    assert unknown_state.status == 200 and all(event_id in unknown_state.text for event_id in ids)


async def test_every_apps_emails_filtered_by_app_and_state_and_paged(deliveries_client, make_app, sessions):
    app, other = await make_app("Paged <One>"), await make_app()
    now = datetime.now(UTC)
    # More than a page (newest first: number 0 is the newest), and one of another app.
    count = PAGE_SIZE + 3
    ids = [str(uuid.uuid4()) for _ in range(count)]
    async with sessions() as session, session.begin():
        session.add_all(
            [
                MailDelivery(
                    event_id=event_id,
                    template="confirmation",
                    app_id=app.app_id,
                    status=DeliveryStatus.SENT,
                    attempts=1,
                    created_at=now - timedelta(seconds=number),
                    sent_at=now - timedelta(seconds=number),
                )
                for number, event_id in enumerate(ids)
            ]
        )
        session.add(
            MailDelivery(
                event_id=str(uuid.uuid4()),
                template="welcome",
                app_id=other.app_id,
                status=DeliveryStatus.FAILED,
                attempts=1,
                last_error="421 later",
                created_at=now,
            )
        )
    first = await deliveries_client.get(f"/deliveries?app={app.app_id}")
    assert first.status == 200 and 'data-page="deliveries-all"' in first.text
    assert f'<option value="{app.app_id}" selected>Paged &lt;One&gt;</option>' in first.text
    assert [event_id for event_id in ids if event_id in first.text] == ids[:PAGE_SIZE]
    older = re.search(r'<a href="([^"]+)" rel="next">Older emails</a>', first.text)
    assert older is not None and "Newer emails" not in first.text
    assert html.unescape(older[1]) == f"/deliveries?app={app.app_id}&page=2"

    second = await deliveries_client.get(html.unescape(older[1]))
    assert [event_id for event_id in ids if event_id in second.text] == ids[PAGE_SIZE:]
    assert "Older emails" not in second.text
    newer = re.search(r'<a href="([^"]+)" rel="prev">Newer emails</a>', second.text)
    assert html.unescape(newer[1]) == f"/deliveries?app={app.app_id}"

    retrying = await deliveries_client.get("/deliveries?state=retrying")
    assert other.name in retrying.text and "421 later" in retrying.text and ids[0] not in retrying.text
    sent_of_other = await deliveries_client.get(f"/deliveries?app={other.app_id}&state=sent")
    assert "No emails in this state" in sent_of_other.text
    # The app's own page pages too, with the state kept in its links.
    own = await deliveries_client.get(f"/apps/{app.app_id}/deliveries?state=sent")
    assert f'href="/apps/{app.app_id}/deliveries?state=sent&amp;page=2" rel="next"' in own.text


async def test_dead_letters_are_listed_and_replayed_one_or_all(
    deliveries_client, make_app, settings, topology, sessions
):
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
        ("dead-letters.replay", {"eventIds": [events[1].id, events[2].id], "replayed": 2}),
    ]


async def test_replaying_needs_the_csrf_token(deliveries_client, make_app, settings, topology, sessions):
    app = await make_app()
    event = event_of(app, "kept@example.com")
    await park(settings, topology, event)
    refused = await deliveries_client.post(f"/apps/{app.app_id}/deliveries/replay", {}, csrf=False)
    assert refused.status == 403
    cross = await deliveries_client.post(
        f"/apps/{app.app_id}/deliveries/replay", {}, headers={"Origin": "https://evil.example"}
    )
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
