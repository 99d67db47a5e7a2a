"""Registration's outbox relay heals itself: whatever fails while it connects, opens its channel or
declares the topology, it starts again after a back-off and publishes what was committed
meanwhile, with `/ready` saying 503 until it relays again."""

from __future__ import annotations

import json
import uuid

import aio_pika
import pytest

from tests.integration.registration.client import Api
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.registration.keys import RELAY
from userreg.shared import outbox
from userreg.shared.messaging import Topology, connect, delete_topology
from userreg.shared.runtime.tasks import State

UNAVAILABLE = {"status": "unavailable", "database": "ok", "broker": "unreachable"}


async def _ready(client) -> tuple[int, dict]:
    async with client.get("/ready") as response:
        return response.status, await response.json()


async def _is_ready(client) -> bool:
    return (await _ready(client))[0] == 200


async def _published(channel: aio_pika.abc.AbstractChannel, topology: Topology, object_id: str) -> dict:
    """The user's event, out of the mailer queue the relay declared and bound (the only queue of the
    test's exchange), once it is there."""
    found: list[dict] = []

    async def collect() -> bool:
        queue = await channel.declare_queue(topology.mailer_queue, passive=True)
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            event = json.loads(message.body)
            if event["user"]["objectId"] == object_id:
                found.append(event)
        return bool(found)

    await eventually(collect, timeout=30, what=f"the event of user {object_id} to be published")
    return found[0]


@pytest.fixture
async def own_topology(settings):
    """An events exchange of the test's own (its topology removed afterwards)."""
    topology = Topology(f"{settings.events_exchange}.{uuid.uuid4().hex[:8]}")
    yield topology
    await delete_topology(settings.amqp_dsn, topology)


async def test_a_declaration_the_broker_refuses_is_retried_until_it_succeeds(
    start_service, make_app, unique_email, own_topology, amqp_connection
):
    # A direct exchange under the events exchange's name: declaring the topic exchange is PRECONDITION_FAILED.
    channel = await amqp_connection.channel()
    await channel.declare_exchange(own_topology.exchange, aio_pika.ExchangeType.DIRECT, durable=True, robust=False)
    client = await start_service(events_exchange=own_topology.exchange, outbox_poll_seconds=0.2)
    relay = client.app[RELAY]
    await eventually(lambda: relay.restarts >= 2, timeout=20, what="the relay to fail twice")
    assert "PRECONDITION_FAILED" in relay.last_error and own_topology.exchange in relay.last_error
    assert await _ready(client) == (503, UNAVAILABLE)
    # Registering goes on meanwhile: the event waits in the outbox.
    api = Api(client, await make_app(email_confirmation_required=True))
    status, user = await api.register({"email": unique_email(), "password": "pw"})
    assert status == 200

    await channel.exchange_delete(own_topology.exchange)  # the operator removes the conflict
    await eventually(lambda: _is_ready(client), timeout=30, what="the relay to recover by itself")
    assert relay.state is State.RUNNING
    event = await _published(channel, own_topology, user["objectId"])
    assert event["type"] == "user.registered"
    await channel.close()


# aiormq does not close the StreamWriter of a connection the broker dropped (here: the cut); the
# garbage collector does, with a ResourceWarning. Collected inside this test, it is ignored here only.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_a_connection_cut_right_after_the_handshake_is_recovered_from(
    start_service, settings, make_app, unique_email, own_topology, amqp_connection, monkeypatch
):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        handshakes = []

        async def connect_then_cut(url: str) -> aio_pika.abc.AbstractRobustConnection:
            connection = await connect(url)
            handshakes.append(url)
            if len(handshakes) == 1:
                await proxy.cut()  # before the channel is opened
            return connection

        monkeypatch.setattr(outbox, "connect", connect_then_cut)
        client = await start_service(
            events_exchange=own_topology.exchange,
            outbox_poll_seconds=0.2,
            amqp_url=proxy.url_through(settings.amqp_dsn),
        )
        relay = client.app[RELAY]
        await eventually(
            lambda: relay.restarts >= 2, timeout=20, what="the relay to fail (the cut, then the broker away)"
        )
        assert len(handshakes) == 1
        assert await _ready(client) == (503, UNAVAILABLE)
        api = Api(client, await make_app(email_confirmation_required=True))
        status, user = await api.register({"email": unique_email(), "password": "pw"})
        assert status == 200

        await proxy.restore()
        await eventually(lambda: _is_ready(client), timeout=30, what="the relay to recover by itself")
        assert len(handshakes) == 2 and proxy.accepted == 2
        channel = await amqp_connection.channel()
        event = await _published(channel, own_topology, user["objectId"])
        assert event["type"] == "user.registered"
        await channel.close()
