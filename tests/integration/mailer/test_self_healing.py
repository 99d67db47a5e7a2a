"""The mailer's consumer heals itself: whatever fails while it connects, opens its channel, sets its
prefetch, declares the topology or starts consuming, it starts again after a back-off and
consumes, with `/ready` saying 503 meanwhile."""

from __future__ import annotations

import aio_pika
import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from tests.integration.mailer.helpers import make_event, settings_for
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.mailer import consumer as consumer_module
from userreg.mailer.app import create_app
from userreg.mailer.keys import CONSUMING
from userreg.shared.messaging import Topology, connect, delete_queues
from userreg.shared.runtime.tasks import State

UNAVAILABLE = {"status": "unavailable", "database": "ok", "broker": "unreachable"}


async def _ready(http: aiohttp.ClientSession, server: TestServer) -> tuple[int, dict]:
    async with http.get(server.make_url("/ready")) as response:
        return response.status, await response.json()


async def _status_is(http: aiohttp.ClientSession, server: TestServer, status: int) -> bool:
    return (await _ready(http, server))[0] == status


async def test_a_declaration_the_broker_refuses_is_retried_until_it_succeeds(
    settings, inbox, topologies, publish_to, make_app, amqp_connection
):
    mail_settings = settings_for(settings, smtp_port=inbox.smtp_port)
    topologies.append(mail_settings)
    mailer_queue = Topology.from_settings(mail_settings).mailer_queue
    # A classic queue under the mailer queue's name: declaring the quorum queue is PRECONDITION_FAILED.
    channel = await amqp_connection.channel()
    await channel.declare_queue(mailer_queue, durable=True, robust=False)
    server = TestServer(create_app(mail_settings))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            consuming = server.app[CONSUMING]
            await eventually(lambda: consuming.restarts >= 2, timeout=20, what="the consumer to fail twice")
            assert "PRECONDITION_FAILED" in consuming.last_error
            assert mailer_queue in consuming.last_error
            assert await _ready(http, server) == (503, UNAVAILABLE)

            await channel.queue_delete(mailer_queue)  # the operator removes the conflict
            await eventually(
                lambda: _status_is(http, server, 200), timeout=30, what="the consumer to recover by itself"
            )
            assert consuming.state is State.RUNNING
            app = await make_app(email_confirmation_required=True)
            event = make_event(app)
            await (await publish_to(mail_settings))(event)
            await inbox.wait_for(lambda m: m.recipients == [event.user.email], timeout=20)
    finally:
        await server.close()
        await channel.close()
        await delete_queues(settings.amqp_dsn, [mailer_queue])


# aiormq does not close the StreamWriter of a connection the broker dropped (here: the cut); the
# garbage collector does, with a ResourceWarning. Collected inside this test, it is ignored here only.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_a_connection_cut_right_after_the_handshake_is_recovered_from(
    settings, inbox, topologies, publish_to, make_app, monkeypatch
):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        mail_settings = settings_for(
            settings, smtp_port=inbox.smtp_port, amqp_url=SecretStr(proxy.url_through(settings.amqp_dsn))
        )
        topologies.append(mail_settings.model_copy(update={"amqp_url": settings.amqp_url}))
        handshakes = []

        async def connect_then_cut(url: str) -> aio_pika.abc.AbstractRobustConnection:
            connection = await connect(url)
            handshakes.append(url)
            if len(handshakes) == 1:
                await proxy.cut()  # before the channel is opened
            return connection

        monkeypatch.setattr(consumer_module, "connect", connect_then_cut)
        server = TestServer(create_app(mail_settings))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                consuming = server.app[CONSUMING]
                await eventually(
                    lambda: consuming.restarts >= 2,
                    timeout=20,
                    what="the consumer to fail (the cut, then the broker away)",
                )
                assert len(handshakes) == 1
                assert await _ready(http, server) == (503, UNAVAILABLE)

                await proxy.restore()
                await eventually(
                    lambda: _status_is(http, server, 200), timeout=30, what="the consumer to recover by itself"
                )
                assert len(handshakes) == 2 and proxy.accepted == 2
                app = await make_app(email_confirmation_required=True)
                event = make_event(app)
                await (await publish_to(mail_settings))(event)  # straight to RabbitMQ
                await inbox.wait_for(lambda m: m.recipients == [event.user.email], timeout=20)
        finally:
            await server.close()
