"""The topology's dead-letter queue against the real RabbitMQ (3.10 on this machine, whatever
AMQP_URL names elsewhere): declared with the arguments its version needs, and a queue declared
earlier with other arguments leaves the services starting, with a warning."""

from __future__ import annotations

import logging
import uuid

import aio_pika
import pytest

from userreg.shared.messaging import (
    QUORUM,
    Topology,
    broker_major_version,
    connect,
    dead_letter_queue_arguments,
    declare_topology,
    delete_topology,
)


@pytest.fixture
async def own_topology(settings):
    topology = Topology(f"userreg.test.topology.{uuid.uuid4().hex[:10]}", mailer_retry_delays=(5,))
    yield topology
    await delete_topology(settings.amqp_dsn, topology)


async def test_the_dead_letter_queue_gets_the_arguments_of_the_brokers_version(settings, own_topology):
    connection = await connect(settings.amqp_dsn)
    try:
        channel = await connection.channel()
        await declare_topology(channel, own_topology)
        major = broker_major_version((await channel.get_underlay_channel()).connection.server_properties)
        assert major is not None, "the tests talk to RabbitMQ"
        # A redeclaration with other arguments would be refused: these are the ones it has.
        again = await connection.channel()
        await again.declare_queue(
            own_topology.mailer_dead_letter_queue, durable=True, arguments=dead_letter_queue_arguments(major)
        )
        assert not again.is_closed
    finally:
        await connection.close()


async def test_a_dead_letter_queue_declared_with_other_arguments_is_used_with_a_warning(settings, own_topology, caplog):
    connection = await connect(settings.amqp_dsn)
    try:
        earlier = await connection.channel()
        await earlier.declare_queue(
            own_topology.mailer_dead_letter_queue, durable=True, arguments={**QUORUM, "x-delivery-limit": 50}
        )
        await earlier.close()

        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        with caplog.at_level(logging.WARNING, logger="userreg.shared.messaging"):
            exchange = await declare_topology(channel, own_topology)

        warnings = [record.getMessage() for record in caplog.records if record.name == "userreg.shared.messaging"]
        assert len(warnings) == 1 and own_topology.mailer_dead_letter_queue in warnings[0]
        assert "PRECONDITION_FAILED" in warnings[0]
        # The caller's channel is untouched: the topology works, letters reach the queue it found.
        assert not channel.is_closed
        assert exchange.name == own_topology.exchange
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", message_id="parked"), routing_key=own_topology.mailer_dead_letter_queue
        )
        queue = await channel.get_queue(own_topology.mailer_dead_letter_queue)
        letter = await queue.get(no_ack=True, fail=False)
        assert letter is not None and letter.message_id == "parked"
    finally:
        await connection.close()


async def test_on_rabbitmq_4_an_older_dead_letter_queue_warns_with_the_policy_that_fixes_it(
    settings, own_topology, caplog, monkeypatch
):
    # As after an upgrade from RabbitMQ 3: the queue exists without a delivery limit argument, and
    # the broker now says it is a 4.x (this machine's 3.10 refuses the redeclaration all the same).
    connection = await connect(settings.amqp_dsn)
    try:
        earlier = await connection.channel()
        await earlier.declare_queue(own_topology.mailer_dead_letter_queue, durable=True, arguments=QUORUM)
        await earlier.close()
        monkeypatch.setattr("userreg.shared.messaging.broker_major_version", lambda properties: 4)

        channel = await connection.channel()
        with caplog.at_level(logging.WARNING, logger="userreg.shared.messaging"):
            await declare_topology(channel, own_topology)

        (warning,) = [record.getMessage() for record in caplog.records if record.name == "userreg.shared.messaging"]
        queue = own_topology.mailer_dead_letter_queue
        assert f"the dead-letter queue {queue} was declared earlier without a delivery limit of its own" in warning
        assert "rabbitmqctl set_policy -p / " + queue in warning
        assert """'{"delivery-limit": 2147483647}' --apply-to quorum_queues""" in warning
        assert not channel.is_closed
    finally:
        await connection.close()
