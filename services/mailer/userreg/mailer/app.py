"""The mailer process: the consumer, the retention task, and `/health`, `/ready` and `/metrics`
on `MAILER_PORT`.

`create_app(settings, *, sender=None)` is the composition root: it builds every object (database
engine, SMTP pool, template store, delivery log, the service layer, the consumer and the retention
task under supervision) in the app's cleanup context, where each is opened when the app starts
and closed when it shuts down, after the messages in hand are finished. A test gives it a fake
`sender` (`sending.RecordingSender`) to run the mailer without an SMTP server.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from userreg.mailer.app_lookup import AppLookup
from userreg.mailer.compose import MailFrom, parse_mail_from
from userreg.mailer.consumer import MailConsumer
from userreg.mailer.delivery_log import DeliveryLog
from userreg.mailer.keys import CONSUMER, CONSUMING, DELIVERER, ENGINE, PRUNING, SENDER, SETTINGS
from userreg.mailer.retention import prune_periodically
from userreg.mailer.sending import Sender
from userreg.mailer.service import Deliverer
from userreg.mailer.smtp import SmtpPool
from userreg.shared.db import autocommit, create_engine, create_sessionmaker
from userreg.shared.runtime import ops
from userreg.shared.runtime.access import access_log
from userreg.shared.runtime.tasks import Supervised, supervised_in
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

# Beyond the consumer's own drain time, for closing its connection.
STOP_MARGIN_SECONDS = 10.0


def create_app(settings: Settings, *, sender: Sender | None = None) -> web.Application:
    """The mailer, ready for `web.run_app` or a test server; nothing connects until it starts.
    `sender`: where its emails go (None: the configured SMTP server, through an `SmtpPool`)."""
    # Refuse to start with a From address that cannot be used (rather than failing every email).
    mail_from = parse_mail_from(settings.mail_from)
    app = web.Application(middlewares=[access_log])
    app[SETTINGS] = settings
    app.cleanup_ctx.extend(
        (
            _database,
            partial(_deliverer, mail_from=mail_from, sender=sender),
            # Stopped in reverse: the retention task, then the consumer, which first finishes the
            # messages in hand (their sends included); then the sender, the delivery log, the engine.
            supervised_in(CONSUMING, _consuming),
            supervised_in(PRUNING, _pruning),
        )
    )
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    # No ping before every checkout (a round trip each, several per email): a connection that died
    # with a database restart fails its statement, the email is retried, the pool replaces it.
    engine = create_engine(app[SETTINGS], application_name="userreg-mailer", pool_pre_ping=False)
    app[ENGINE] = engine
    yield
    await engine.dispose()


async def _deliverer(app: web.Application, *, mail_from: MailFrom, sender: Sender | None) -> AsyncIterator[None]:
    """The service layer with what it sends through and records in."""
    settings = app[SETTINGS]
    sender = sender if sender is not None else SmtpPool(settings)
    # The mailer's statements are single reads or single atomic writes: no BEGIN/COMMIT around them.
    single_statements = autocommit(app[ENGINE])
    templates = TemplateStore.from_settings(settings)
    # Names this process's claims: unique per process, and readable in the table.
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    deliveries = DeliveryLog(single_statements, owner, settings.mailer_claim_seconds)
    app[SENDER] = sender
    app[DELIVERER] = Deliverer(
        apps=AppLookup(create_sessionmaker(single_statements), templates),
        templates=templates,
        deliveries=deliveries,
        sender=sender,
        mail_from=mail_from,
    )
    try:
        yield
    finally:
        await sender.close()
        await deliveries.close()


def _consuming(app: web.Application) -> Supervised:
    consumer = MailConsumer(app[SETTINGS], deliverer=app[DELIVERER])
    app[CONSUMER] = consumer
    # Stopping, the consumer first finishes the messages in hand (their sends included).
    return Supervised(
        "mailer-consumer",
        consumer.run,
        ready=lambda: consumer.ready,
        stop=consumer.stop,
        grace_seconds=consumer.drain_seconds + STOP_MARGIN_SECONDS,
    )


def _pruning(app: web.Application) -> Supervised:
    engine, retention_days = app[ENGINE], app[SETTINGS].mail_retention_days
    return Supervised("mail-retention", lambda: prune_periodically(engine, retention_days))


# Ready: the database answers through the mailer's own pool, and the consumer runs and consumes
# through its open channel to RabbitMQ.
health = ops.health
ready = ops.ready_view(database=ops.reachable(ops.select_one(ENGINE)), broker=ops.running(CONSUMING))
metrics = ops.metrics_view()
