"""`userreg-confirmation-web` as an operator runs it: a real process configured by environment,
healthy, serving links, logging without tokens, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import uuid

import aiohttp

from tests.integration.confirmation_web.support import data_page
from tests.support.polling import eventually, free_port
from tests.support.processes import ServiceProcess
from tests.support.readiness import ready_follows_the_broker, ready_is
from tests.support.tcp_proxy import TcpProxy
from userreg.shared.db import UserStatus

NEW_PASSWORD = "process reset passphrase"


async def test_service_process_serves_links_and_stops_on_sigterm(
    settings, make_app, make_link, user_status, make_reset_link
):
    port = free_port()
    service = ServiceProcess(
        f"confirmation-web-{uuid.uuid4().hex[:8]}",
        "userreg-confirmation-web",
        {
            "DATABASE_URL": settings.database_dsn,
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": settings.events_exchange,
            "PUBLIC_CONFIRMATION_URL": f"http://127.0.0.1:{port}",
            "BIND_HOST": "127.0.0.1",
            "CONFIRMATION_PORT": str(port),
            "LOG_LEVEL": "DEBUG",  # the access log too, which must not show tokens either
        },
        health_url=f"http://127.0.0.1:{port}/health",
    )
    await service.start()
    try:
        app = await make_app("Process Co", email_confirmation_required=True)
        link = await make_link(app)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            # Ready once its outbox relay is connected, a moment after it answers /health.
            await eventually(lambda: ready_is(http, f"{base}/ready", 200), what="the service to be ready")
            async with http.get(base + link.path) as response:
                assert (response.status, data_page(await response.text())) == (200, "confirmation-pending")
            async with http.post(
                f"{base}/{app.app_id}/confirm", data={"token": link.token}, headers={"Origin": base}
            ) as response:
                assert (response.status, data_page(await response.text())) == (200, "confirmation-confirmed")
            # A password reset, hashed by the process's own argon2id worker.
            reset = await make_reset_link(app, user_id=link.user_id)
            async with http.get(base + reset.path) as response:
                assert (response.status, data_page(await response.text())) == (200, "password-reset")
            async with http.post(
                f"{base}/{app.app_id}/reset-password",
                headers={"Origin": base},
                data={"token": reset.token, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
            ) as response:
                assert (response.status, data_page(await response.text())) == (200, "password-reset-done")
        assert await user_status(link.user_id) is UserStatus.ENABLED
    finally:
        exit_code = await service.stop(timeout=20)
    assert exit_code == 0
    log = service.log_path.read_text()
    assert "confirmed their email address" in log
    assert f"/{app.app_id}/confirm/[token]" in log  # the access log line, redacted
    assert link.token not in log
    assert "set a new password through a reset link" in log
    assert f"/{app.app_id}/reset-password/[token]" in log
    assert reset.token not in log and NEW_PASSWORD not in log


async def test_ready_reads_the_relays_connection_and_opens_none_of_its_own(settings):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        port = free_port()
        service = ServiceProcess(
            f"confirmation-web-ready-{uuid.uuid4().hex[:8]}",
            "userreg-confirmation-web",
            {
                "DATABASE_URL": settings.database_dsn,
                "AMQP_URL": proxy.url_through(settings.amqp_dsn),
                "EVENTS_EXCHANGE": settings.events_exchange,
                "PUBLIC_CONFIRMATION_URL": f"http://127.0.0.1:{port}",
                "BIND_HOST": "127.0.0.1",
                "CONFIRMATION_PORT": str(port),
            },
            health_url=f"http://127.0.0.1:{port}/health",
        )
        await service.start()
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                await ready_follows_the_broker(http, f"{base}/ready", proxy, "outbox relay")
        finally:
            assert await service.stop(timeout=20) == 0
