"""The composition root: builds a `Registrar` and its resources from the settings, and closes them.

The HTTP service opens one in its `cleanup_ctx`; the admin command opens one around a command:

    async with open_registrar(settings) as registrar:
        tenant = await registrar.load_tenant(app_id)
        user = await registrar.create_user(tenant, {"email": …, "password": …})
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.registration.hashing import Argon2Parameters, PasswordHashing, worker_count
from userreg.registration.service import Registrar
from userreg.registration.tenants import TenantCache
from userreg.registration.webhook import BeforeRegisterWebhook
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.db.engine import asyncpg_dsn
from userreg.shared.ratelimits import RateLimiter
from userreg.shared.settings import Settings


@contextlib.asynccontextmanager
async def open_registrar(settings: Settings, engine: AsyncEngine | None = None, *,
                         hash_workers: int | None = None,
                         cache_tenants: bool = False) -> AsyncIterator[Registrar]:
    """A ready `Registrar`: password-hashing workers started, a client session for webhooks open.

    `engine` is the caller's to dispose when given; otherwise one is made and disposed here.
    `hash_workers` overrides the setting (a one-shot command needs one worker, not one per core).
    `cache_tenants` keeps apps and schemas in memory, invalidated by PostgreSQL notifications (for
    a long-running service; a one-shot command reads them once anyway).
    """
    async with contextlib.AsyncExitStack() as stack:
        if engine is None:
            engine = create_engine(settings)
            stack.push_async_callback(engine.dispose)
        tenants = None
        if cache_tenants:
            tenants = TenantCache(asyncpg_dsn(engine.url.render_as_string(hide_password=False)))
            listener = asyncio.create_task(tenants.run(), name="tenant-cache")
            stack.push_async_callback(_cancel, listener)
        hashing = PasswordHashing(Argon2Parameters.from_settings(settings),
                                  hash_workers or worker_count(settings.hash_workers),
                                  queue_seconds=settings.hash_queue_seconds)
        stack.push_async_callback(hashing.close)
        await hashing.start()
        http = await stack.enter_async_context(aiohttp.ClientSession(raise_for_status=False))
        yield Registrar(
            create_sessionmaker(engine),
            hashing,
            BeforeRegisterWebhook(http, settings.webhook_timeout_seconds),
            public_confirmation_url=settings.public_confirmation_url,
            resend_cooldown_seconds=settings.resend_cooldown_seconds,
            tenants=tenants,
            rate_limiter=RateLimiter(engine),
        )


async def _cancel(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
