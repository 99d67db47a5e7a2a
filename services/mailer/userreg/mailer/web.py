"""The mailer process: the consumer, plus `/health`, `/ready` and `/metrics` on `MAILER_PORT`.

`create_app(settings)` is the composition root: every resource (database engine, SMTP pool, AMQP
connection) is opened in the app's cleanup context and closed when it shuts down, after the
messages in hand are finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from userreg.mailer.compose import parse_sender
from userreg.mailer.consumer import MailConsumer
from userreg.mailer.deliver import AppLookup, Deliverer
from userreg.mailer.deliveries import DeliveryLog
from userreg.mailer.policy import claim_seconds
from userreg.mailer.retention import prune_periodically
from userreg.mailer.smtp import SmtpPool
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
CONSUMER = web.AppKey("consumer", MailConsumer)
READY_TIMEOUT_SECONDS = 3.0


def create_app(settings: Settings) -> web.Application:
    # Refuse to start with a From address that cannot be used (rather than failing every email).
    parse_sender(settings.mail_from)
    app = web.Application()
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_mailer)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


async def _mailer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # No ping before every checkout (a round trip each, several per email): a connection that died
    # with a database restart fails its statement, the email is retried, the pool replaces it.
    engine = create_engine(settings, pool_pre_ping=False)
    # The mailer's statements are single reads or single atomic writes: no BEGIN/COMMIT around them.
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    smtp = SmtpPool(settings)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    templates = TemplateStore.from_settings(settings)
    deliveries = DeliveryLog(autocommit, owner, claim_seconds(settings.smtp_timeout))
    deliverer = Deliverer(
        apps=AppLookup(create_sessionmaker(autocommit), templates),
        templates=templates,
        deliveries=deliveries,
        smtp=smtp,
        sender=parse_sender(settings.mail_from),
    )
    consumer = MailConsumer(settings, deliverer=deliverer, engine=engine)
    app[ENGINE] = engine
    app[CONSUMER] = consumer
    task = asyncio.create_task(consumer.run(), name="mailer-consumer")
    task.add_done_callback(_log_crash)
    pruning = asyncio.create_task(prune_periodically(engine, settings.mail_retention_days), name="mail-retention")
    try:
        yield
    finally:
        pruning.cancel()
        await consumer.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
        await smtp.close()
        await deliveries.close()
        await engine.dispose()


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the mailer consumer stopped", exc_info=task.exception())


async def health(request: web.Request) -> web.Response:
    """Liveness: the process answers."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness, 200 or 503 with the same body as the other services': the database answers a
    query through the mailer's own pool, and the consumer is consuming through its open channel to
    RabbitMQ. A probe opens no connection of its own."""
    database, broker = await _database_ok(request), request.app[CONSUMER].ready
    ok = database and broker
    return web.json_response({"status": "ready" if ok else "unavailable",
                              "database": "ok" if database else "unreachable",
                              "broker": "ok" if broker else "unreachable"}, status=200 if ok else 503)


async def _database_ok(request: web.Request) -> bool:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS), request.app[ENGINE].connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as error:  # any failure means "not ready"; the reason goes to the log only
        logger.warning("readiness: database check failed (%s)", type(error).__name__)
        return False
    return True


async def metrics(request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest(REGISTRY))
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    response.charset = "utf-8"
    return response
