"""The mailer process: the consumer, plus `/health`, `/ready` and `/metrics` on `MAILER_PORT`.

`create_app(settings)` is the composition root: every resource (database engine, SMTP pool, AMQP
connection) is opened in the app's cleanup context and closed when it shuts down, after the
messages in hand are finished.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from userreg.mailer.compose import parse_sender
from userreg.mailer.consumer import MailConsumer
from userreg.mailer.deliver import AppLookup, Deliverer
from userreg.mailer.deliveries import DeliveryLog
from userreg.mailer.retention import prune_periodically
from userreg.mailer.smtp import SmtpPool
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.runtime import ops
from userreg.shared.runtime.tasks import Supervised
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
CONSUMER = web.AppKey("consumer", MailConsumer)
CONSUMING = web.AppKey("consuming", Supervised)  # the consumer's lifecycle: running, or restarting
# Beyond the consumer's own drain time, for closing its connection.
STOP_MARGIN_SECONDS = 10.0


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
    deliveries = DeliveryLog(autocommit, owner, settings.mailer_claim_seconds)
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
    # Stopping, the consumer first finishes the messages in hand (their sends included).
    consuming = Supervised("mailer-consumer", consumer.run, ready=lambda: consumer.ready, stop=consumer.stop,
                           grace_seconds=consumer.drain_seconds + STOP_MARGIN_SECONDS)
    pruning = Supervised("mail-retention", lambda: prune_periodically(engine, settings.mail_retention_days))
    app[CONSUMING] = consuming
    try:
        async with consuming, pruning:
            yield
    finally:
        await smtp.close()
        await deliveries.close()
        await engine.dispose()


# Ready: the database answers through the mailer's own pool, and the consumer runs and consumes
# through its open channel to RabbitMQ.
health = ops.health
ready = ops.ready_view(database=ops.reachable(ops.select_one(ENGINE)), broker=ops.running(CONSUMING))
metrics = ops.metrics_view()
