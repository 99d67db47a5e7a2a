"""The composition root of the registration service: every object it runs with is built here.

`create_app` makes the `web.Application`; nothing connects until the app starts: every resource is
opened in `cleanup_ctx` and closed, in reverse order, on shutdown. Its keyword arguments take fakes
for the outward dependencies (None = the real one), so a test composes the service without
workers, webhooks, LISTEN loops or a broker.

`open_registrar` builds the service layer alone, for the app's own `cleanup_ctx` and for the admin
command, which opens one around a command:

    async with open_registrar(settings, engine, hash_workers=1) as registrar:
        tenant = await registrar.load_tenant(app_id)
        user = await registrar.create_user(tenant, {"email": …, "password": …})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.registration.keys import ACCOUNTS, ENGINE, OPENAPI, REGISTRAR, RELAY, SETTINGS, TRUSTED_PROXIES
from userreg.registration.middleware import envelope_and_metrics
from userreg.registration.openapi import document
from userreg.registration.repository import Repository
from userreg.registration.routes import add_routes
from userreg.registration.service import Registrar
from userreg.registration.tenants import Tenant, TenantCache
from userreg.registration.webhook import BeforeRegisterWebhook
from userreg.shared.db import create_engine
from userreg.shared.db.engine import session_dsn
from userreg.shared.hashing import Argon2Parameters, PasswordHashing, worker_count
from userreg.shared.messaging import Topology
from userreg.shared.outbox import REGISTRATION_PRODUCER, OutboxRelay
from userreg.shared.ratelimits import RateLimiter
from userreg.shared.runtime.access import access_log
from userreg.shared.runtime.tasks import Supervised, supervised_in
from userreg.shared.settings import Settings

# Under load, registrations' events leave in batches at most this often (a batch is a transaction and
# a few round trips, which would otherwise be paid per registration); a lone event leaves at once.
RELAY_LINGER_SECONDS = 0.05


def create_app(
    settings: Settings,
    *,
    hashing: PasswordHashing | None = None,
    webhook: BeforeRegisterWebhook | None = None,
    tenant_cache: TenantCache[Tenant] | None = None,
    outbox_relay: OutboxRelay | None = None,
) -> web.Application:
    """The service, ready for `web.run_app` or a test server. A fake given here is used as it is:
    the caller starts and closes it (a `tenant_cache`'s `run()` is run while the app runs)."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[access_log, envelope_and_metrics])
    app[SETTINGS] = settings
    # The document describes the route table it is served from; built here, where both are known.
    app[OPENAPI] = json.dumps(document())
    app[TRUSTED_PROXIES] = settings.trusted_proxy_networks

    async def registrar(app: web.Application) -> AsyncIterator[None]:
        """The service layer with its argon2id worker pool, the webhook client session and the
        tenant cache (apps and schemas in memory, dropped when PostgreSQL notifies a change)."""
        engine = app[ENGINE]
        tenants = tenant_cache
        if tenants is None:
            tenants = TenantCache(session_dsn(settings))
        async with open_registrar(settings, engine, hashing=hashing, webhook=webhook, tenant_cache=tenants) as service:
            app[REGISTRAR] = service
            app[ACCOUNTS] = service.accounts
            yield

    def relay(app: web.Application) -> Supervised:
        """Publishes what this (and any other) replica committed to the outbox; `/ready` reads its state."""
        part = outbox_relay
        if part is None:
            part = OutboxRelay(
                app[ENGINE],
                settings.amqp_dsn,
                Topology.from_settings(settings),
                batch_size=settings.outbox_batch_size,
                poll_seconds=settings.outbox_poll_seconds,
                linger_seconds=RELAY_LINGER_SECONDS,
                listen_dsn=session_dsn(settings),
                producer=REGISTRATION_PRODUCER,
                unowned_too=True,
            )
        return Supervised("outbox-relay", part.run, ready=lambda: part.connected)

    app.cleanup_ctx.extend((_database, registrar, supervised_in(RELAY, relay)))
    add_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    # No pre-ping: it costs a round trip per checkout on the hot path. A connection that died with
    # a database restart fails one request (503) and SQLAlchemy then replaces the pool's connections.
    # hide_parameters: an unexpected database error is logged, and its statement's parameters hold
    # password hashes, token hashes and the outbox row's confirmation link.
    engine = create_engine(app[SETTINGS], application_name=REGISTRATION_PRODUCER, pool_pre_ping=False)
    app[ENGINE] = engine
    yield
    await engine.dispose()


@contextlib.asynccontextmanager
async def open_registrar(
    settings: Settings,
    engine: AsyncEngine,
    *,
    hash_workers: int | None = None,
    hashing: PasswordHashing | None = None,
    webhook: BeforeRegisterWebhook | None = None,
    tenant_cache: TenantCache[Tenant] | None = None,
) -> AsyncIterator[Registrar]:
    """A ready `Registrar` on the caller's engine: password-hashing workers started, a client
    session for webhooks open; both closed when the block ends.

    `hash_workers` overrides the setting (a one-shot command needs one worker, not one per core).
    `hashing` and `webhook` replace the real ones (the caller's to start and close). With
    `tenant_cache` (a long-running service), apps and schemas are kept in memory while its `run()`
    listens; without, they are read every time (a one-shot command reads them once anyway).
    """
    async with contextlib.AsyncExitStack() as stack:
        if tenant_cache is not None:
            listener = asyncio.create_task(tenant_cache.run(), name="tenant-cache")
            stack.push_async_callback(_cancel, listener)
        if hashing is None:
            hashing = PasswordHashing(
                Argon2Parameters.from_settings(settings),
                hash_workers or worker_count(settings.hash_workers),
                queue_seconds=settings.hash_queue_seconds,
            )
            stack.push_async_callback(hashing.close)
            await hashing.start()
        if webhook is None:
            http = await stack.enter_async_context(aiohttp.ClientSession(raise_for_status=False))
            webhook = BeforeRegisterWebhook(http, settings.webhook_timeout_seconds)
        yield Registrar(
            Repository(engine),
            hashing,
            webhook,
            public_confirmation_url=settings.public_confirmation_url,
            resend_cooldown_seconds=settings.resend_cooldown_seconds,
            tenants=tenant_cache,
            rate_limiter=RateLimiter(engine),
        )


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
