"""`userreg dead-letters list|replay` on a topology of the test's own."""

from __future__ import annotations

import uuid

import aio_pika

from tests.integration.admin.conftest import park
from userreg.shared.events import USER_REGISTERED, Event, EventUser


async def queued_ids(settings, queue_name: str) -> list[str]:
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        ids = []
        while (message := await queue.get(no_ack=False, fail=False)) is not None:
            ids.append(message.message_id)
        return ids  # unacknowledged: back in the queue when the channel closes
    finally:
        await connection.close()


async def test_list_and_replay(settings, own_topology, make_app, auserreg):
    app = await make_app()
    events = [
        Event(
            type=USER_REGISTERED,
            appId=app.app_id,
            user=EventUser(
                objectId=str(uuid.uuid4()).upper(),
                identityProperty="email",
                identity=f"dead{n}@example.com",
                email=f"dead{n}@example.com",
            ),
        )
        for n in range(2)
    ]
    for event in events:
        await park(settings, own_topology, event)

    listed = await auserreg("dead-letters", "list")
    assert listed.code == 0, listed.err
    assert [letter["eventId"] for letter in listed.json] == [event.id for event in events]
    assert listed.json[0]["reason"] == "550 mailbox unavailable" and listed.json[0]["queued"] is True
    assert listed.json[0]["appId"] == app.app_id

    replayed = await auserreg("dead-letters", "replay", "--event-id", events[0].id)
    assert replayed.code == 0, replayed.err
    assert replayed.json == {"replayed": 1}
    assert await queued_ids(settings, own_topology.mailer_queue) == [events[0].id]
    assert [letter["eventId"] for letter in (await auserreg("dead-letters", "list")).json] == [events[1].id]
    # The history is the whole deployment's (the database's), which other tests share: look at ours.
    history = (await auserreg("dead-letters", "list", "--all")).json
    ours = {event.id for event in events}
    assert {letter["eventId"]: letter["queued"] for letter in history if letter["eventId"] in ours} == {
        events[0].id: False,
        events[1].id: True,
    }

    missing = await auserreg("dead-letters", "replay", "--event-id", str(uuid.uuid4()))
    assert missing.code == 1 and "not in the dead-letter queue" in missing.err

    everything = await auserreg("dead-letters", "replay")
    assert everything.json == {"replayed": 1}
    assert sorted(await queued_ids(settings, own_topology.mailer_queue)) == sorted(event.id for event in events)
    assert (await auserreg("dead-letters", "list")).json == []


async def test_an_unreachable_broker_is_one_clear_line(auserreg, monkeypatch):
    monkeypatch.setenv("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
    outcome = await auserreg("dead-letters", "list")
    assert outcome.code == 1
    assert outcome.err.startswith("userreg dead-letters list: cannot read the dead-letter queue on RabbitMQ")
    assert len(outcome.err.strip().splitlines()) == 1
