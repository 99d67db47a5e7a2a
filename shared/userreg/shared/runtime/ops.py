"""The operations endpoints, answered the same way by every service.

* `GET /health`: 200 `{"status": "ok", "version": "0.2.0"}` while the process serves requests; the
  version is the installed packages' (one for all of them: the repository's VERSION file).
* `GET /ready`: 200 `{"status": "ready", "database": "ok", "broker": "ok"}`, or 503 with
  `"status": "unavailable"` and `"unreachable"` for each check that failed. The checks read what
  the service keeps anyway (its database pool, the state of its supervised parts): the endpoint is
  public, and a probe must not make us open connections at its rate.
* `GET /metrics`: the Prometheus text of the process.

    ready = ops.ready_view(database=ops.reachable(ops.select_one(ENGINE)), broker=ops.running(RELAY))
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from importlib import metadata

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.shared.runtime.tasks import Supervised

logger = logging.getLogger(__name__)

READY_TIMEOUT_SECONDS = 2.0
# Every userreg package carries the same version; the shared one is installed wherever a service is.
VERSION = metadata.version("userreg-shared")

Check = Callable[[web.Application], Awaitable[bool] | bool]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def health(_request: web.Request) -> web.Response:
    """Liveness: the process serves requests, and which version it runs."""
    return web.json_response({"status": "ok", "version": VERSION})


def ready_view(**checks: Check) -> Handler:
    """The `/ready` handler of these checks, each named by the key it answers in the body."""

    async def ready(request: web.Request) -> web.Response:
        results = {name: await _passes(name, check, request.app) for name, check in checks.items()}
        ok = all(results.values())
        return web.json_response(
            {
                "status": "ready" if ok else "unavailable",
                **{name: "ok" if passed else "unreachable" for name, passed in results.items()},
            },
            status=200 if ok else 503,
        )

    return ready


async def _passes(name: str, check: Check, app: web.Application) -> bool:
    try:
        outcome = check(app)
        if inspect.isawaitable(outcome):
            outcome = await outcome
    except Exception as error:  # a check that fails says "not ready"; the reason is the log's
        logger.warning("readiness: the %s check failed (%s)", name, type(error).__name__)
        return False
    return bool(outcome)


def reachable(
    query: Callable[[web.Application], Awaitable[object]], *, timeout: float = READY_TIMEOUT_SECONDS
) -> Check:
    """Passes when `query(app)` completes within `timeout` (taking a connection from the pool
    included: a new one while the pool is empty)."""

    async def check(app: web.Application) -> bool:
        async with asyncio.timeout(timeout):
            await query(app)
        return True

    return check


def select_one(key: web.AppKey[AsyncEngine]) -> Callable[[web.Application], Awaitable[object]]:
    """`SELECT 1` on a connection of the service's own pool (the engine stored under `key`)."""

    async def query(app: web.Application) -> object:
        async with app[key].connect() as connection:
            return await connection.scalar(text("SELECT 1"))

    return query


def running(key: web.AppKey[Supervised], *, optional: bool = False) -> Check:
    """Passes while the supervised part stored under `key` runs and is ready (not while it restarts
    after a failure). `optional`: a process started without that part passes (it does not use
    what the part connects to)."""

    def check(app: web.Application) -> bool:
        part = app.get(key)
        if part is None:
            return optional
        return part.ready

    return check


def metrics_view(scrape: Callable[[web.Application], Awaitable[bytes]] | None = None) -> Handler:
    """The `/metrics` handler: `scrape(app)` (for a service that refreshes a gauge first), or the
    process's registry as it is."""

    async def metrics(request: web.Request) -> web.Response:
        body = await scrape(request.app) if scrape is not None else generate_latest(REGISTRY)
        response = web.Response(body=body)
        response.headers[hdrs.CONTENT_TYPE] = CONTENT_TYPE_LATEST
        return response

    return metrics
