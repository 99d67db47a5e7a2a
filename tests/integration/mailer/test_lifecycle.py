"""The mailer as an operator runs it: health, readiness and metrics, a graceful stop, a real process."""

from __future__ import annotations

from importlib import metadata

import aiohttp
import aiosmtplib
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from tests.integration.mailer.helpers import delivery_rows, make_event, running_mailer, settings_for
from tests.support.polling import eventually, free_port
from tests.support.processes import ServiceProcess
from tests.support.readiness import ready_follows_the_broker
from tests.support.tcp_proxy import TcpProxy
from userreg.mailer.app import create_app
from userreg.mailer.keys import CONSUMER
from userreg.shared.db.mail import DeliveryStatus
from userreg.shared.messaging import Topology


async def test_health_ready_and_metrics(mailer, publish, inbox, make_app):
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    await publish(event)
    await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    async with aiohttp.ClientSession() as http:
        async with http.get(mailer.make_url("/health")) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok", "version": metadata.version("userreg-mailer")}
        async with http.get(mailer.make_url("/ready")) as response:
            assert response.status == 200
            assert await response.json() == {"status": "ready", "database": "ok", "broker": "ok"}
        async with http.get(mailer.make_url("/metrics")) as response:
            assert response.status == 200
            body = await response.text()
    for name in (
        "userreg_mailer_sent_total",
        "userreg_mailer_retried_total",
        "userreg_mailer_dead_lettered_total",
        "userreg_mailer_send_seconds_bucket",
        "userreg_mailer_event_to_sent_seconds_bucket",
    ):
        assert name in body
    assert 'userreg_mailer_sent_total{template="confirmation"}' in body


async def test_stopping_finishes_the_email_being_sent(
    mail_settings, publish, inbox, make_app, sessions, amqp_connection
):
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    inbox.reply_delay = 1.0
    async with running_mailer(mail_settings):
        await publish(event)
        await eventually(lambda: delivery_rows(sessions, event.id), what="the send to start")
    # The mailer has stopped: the email it was sending went out and its event was settled.
    assert [m.recipients for m in inbox.messages] == [[event.user.email]]
    [row] = await delivery_rows(sessions, event.id)
    assert row.status is DeliveryStatus.SENT
    channel = await amqp_connection.channel()
    queue = await channel.declare_queue(Topology.from_settings(mail_settings).mailer_queue, passive=True)
    assert queue.declaration_result.message_count == 0
    await channel.close()


async def test_mailer_process_sends_and_stops_cleanly_on_sigterm(settings, inbox, topologies, publish_to, make_app):
    mail_settings = settings_for(settings, smtp_port=inbox.smtp_port)
    topologies.append(mail_settings)
    port = free_port()
    env = {
        "DATABASE_URL": mail_settings.database_dsn,
        "AMQP_URL": mail_settings.amqp_dsn,
        "EVENTS_EXCHANGE": mail_settings.events_exchange,
        "MAILER_RETRY_DELAYS": mail_settings.mailer_retry_delays,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(inbox.smtp_port),
        "MAIL_FROM": "Ops <ops@mail.test>",
        "MAILER_PORT": str(port),
        "SMTP_PASSWORD": "not-printed-anywhere",
    }
    process = ServiceProcess("mailer-test", "userreg-mailer", env, f"http://127.0.0.1:{port}/ready")
    await process.start()
    try:
        app = await make_app(email_confirmation_required=True)
        event = make_event(app)
        publish = await publish_to(mail_settings)
        await publish(event)
        [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email], timeout=20)
        assert message.parsed["From"] == "Ops <ops@mail.test>"
    finally:
        assert await process.stop() == 0
    log = process.log_path.read_text()
    assert "not-printed-anywhere" not in log
    assert event.confirmation.url.rsplit("/", 1)[1] not in log


async def test_inbox_process_receives_and_serves_messages():
    smtp_port, http_port = free_port(), free_port()
    env = {"INBOX_SMTP_PORT": str(smtp_port), "INBOX_HTTP_PORT": str(http_port)}
    process = ServiceProcess("inbox-test", "userreg-inbox", env, f"http://127.0.0.1:{http_port}/health")
    await process.start()
    try:
        await aiosmtplib.send(
            "Subject: hello\r\nTo: someone@example.com\r\n\r\nHi there\r\n",
            sender="me@example.com",
            recipients=["someone@example.com"],
            hostname="127.0.0.1",
            port=smtp_port,
            start_tls=False,
        )
        base = f"http://127.0.0.1:{http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/api/messages?to=SOMEONE@example.com") as response:
                [summary] = await response.json()
            assert summary["subject"] == "hello" and summary["to"] == ["someone@example.com"]
            async with http.get(f"{base}/api/messages/{summary['id']}") as response:
                full = await response.json()
            assert full["text"].strip() == "Hi there" and full["html"] is None
            async with http.get(f"{base}/") as response:
                assert "hello" in await response.text()
            async with http.delete(f"{base}/api/messages") as response:
                assert response.status == 204
            async with http.get(f"{base}/api/messages") as response:
                assert await response.json() == []
    finally:
        assert await process.stop() == 0


# aiormq does not close the StreamWriter of a connection the broker dropped (here: the cut); the
# garbage collector does, with a ResourceWarning. Collected inside this test, it is ignored here only.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_waits_for_rabbitmq_and_survives_losing_it(settings, inbox, topologies, publish_to, make_app):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        await proxy.cut()  # the broker is away when the mailer starts
        mail_settings = settings_for(
            settings, smtp_port=inbox.smtp_port, amqp_url=SecretStr(proxy.url_through(settings.amqp_dsn))
        )
        # Removed straight through RabbitMQ, not through the proxy.
        topologies.append(mail_settings.model_copy(update={"amqp_url": settings.amqp_url}))
        server = TestServer(create_app(mail_settings))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(server.make_url("/ready")) as response:
                    assert response.status == 503 and (await response.json())["broker"] == "unreachable"
                await proxy.restore()
                await eventually(lambda: server.app[CONSUMER].ready, timeout=30, what="the mailer to connect")
                app = await make_app(email_confirmation_required=True)
                publish = await publish_to(mail_settings)  # straight to RabbitMQ, not through the proxy
                first, second = make_event(app), make_event(app)
                await publish(first)
                await inbox.wait_for(lambda m: m.recipients == [first.user.email])

                await proxy.cut()  # lost mid-run: connect_robust reconnects and consumes again
                await proxy.restore()
                await publish(second)
                await inbox.wait_for(lambda m: m.recipients == [second.user.email], timeout=30)
        finally:
            await server.close()


# aiormq does not close the StreamWriter of a connection the broker dropped (here: the cut); the
# garbage collector does, with a ResourceWarning. Collected inside this test, it is ignored here only.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_ready_reads_the_consumers_connection_and_opens_none_of_its_own(settings, inbox, topologies):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        mail_settings = settings_for(
            settings, smtp_port=inbox.smtp_port, amqp_url=SecretStr(proxy.url_through(settings.amqp_dsn))
        )
        topologies.append(mail_settings.model_copy(update={"amqp_url": settings.amqp_url}))
        async with running_mailer(mail_settings) as server, aiohttp.ClientSession() as http:
            await ready_follows_the_broker(http, str(server.make_url("/ready")), proxy, "consumer")
