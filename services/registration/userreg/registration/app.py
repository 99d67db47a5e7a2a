"""The registration service's `web.Application` factory. Nothing connects until the app starts:
every resource is opened in `cleanup_ctx` and closed, in reverse order, on shutdown."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from aiohttp import web

from userreg.registration.bootstrap import open_registrar
from userreg.registration.keys import ENGINE, OPENAPI, REGISTRAR, RELAY, SETTINGS, TRUSTED_PROXIES
from userreg.registration.middleware import envelope_and_metrics
from userreg.registration.openapi import document
from userreg.registration.routes import add_routes
from userreg.shared.db import create_engine
from userreg.shared.messaging import Topology
from userreg.shared.outbox import OutboxRelay
from userreg.shared.runtime.tasks import Supervised, supervised_in
from userreg.shared.settings import Settings

# Under load, registrations' events leave in batches at most this often (a batch is a transaction and
# a few round trips, which would otherwise be paid per registration); a lone event leaves at once.
RELAY_LINGER_SECONDS = 0.05


def create_app(settings: Settings) -> web.Application:
    """The service, ready for `web.run_app` or a test server."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[envelope_and_metrics])
    app[SETTINGS] = settings
    # The document describes the route table it is served from; built here, where both are known.
    app[OPENAPI] = json.dumps(document())
    app[TRUSTED_PROXIES] = settings.trusted_proxy_networks
    app.cleanup_ctx.extend((_database, _registrar, supervised_in(RELAY, _outbox_relay)))
    add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    # No pre-ping: it costs a round trip per checkout on the hot path. A connection that died with
    # a database restart fails one request (503) and SQLAlchemy then replaces the pool's connections.
    # hide_parameters: an unexpected database error is logged, and its statement's parameters hold
    # password hashes, token hashes and the outbox row's confirmation link.
    engine = create_engine(app[SETTINGS], pool_pre_ping=False)
    app[ENGINE] = engine
    yield
    await engine.dispose()


async def _registrar(app: web.Application) -> AsyncIterator[None]:
    """The service layer with its argon2id worker pool and the webhook client session."""
    async with open_registrar(app[SETTINGS], app[ENGINE], cache_tenants=True) as registrar:
        app[REGISTRAR] = registrar
        yield


def _outbox_relay(app: web.Application) -> Supervised:
    """Publishes what this (and any other) replica committed to the outbox; `/ready` reads its state."""
    settings = app[SETTINGS]
    relay = OutboxRelay(app[ENGINE], settings.amqp_dsn, Topology.from_settings(settings),
                        batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds,
                        linger_seconds=RELAY_LINGER_SECONDS)
    return Supervised("outbox-relay", relay.run, ready=lambda: relay.connected)
