"""The HTTP edge: decode the request, call one handler, render its outcome. Nothing else."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from userreg.confirmation_web.handlers import Confirmations, Failure
from userreg.confirmation_web.pages import PageRenderer
from userreg.confirmation_web.rules import is_same_origin_post
from userreg.shared.outbox import OutboxRelay

logger = logging.getLogger(__name__)

CONFIRMATIONS_KEY = web.AppKey("confirmations", Confirmations)
PAGES_KEY = web.AppKey("pages", PageRenderer)
PUBLIC_ORIGIN_KEY = web.AppKey("public_origin", str)
RELAY_KEY = web.AppKey("outbox_relay", OutboxRelay)
READY_TIMEOUT_SECONDS = 2.0


def _accept_language(request: web.Request) -> str | None:
    return request.headers.get("Accept-Language")


async def open_link(request: web.Request) -> web.Response:
    """GET (and HEAD) of a confirmation link."""
    outcome = await request.app[CONFIRMATIONS_KEY].open(
        request.match_info["app_id"], request.match_info["token"], request.method, request.headers)
    return await request.app[PAGES_KEY].render(outcome, _accept_language(request))


# What aiohttp raises for a form it cannot parse: bytes not in the declared charset, an unknown
# charset or transfer encoding, a multipart body without (or with a broken) boundary or with bad
# part headers. Such a form carries no token we can read; an oversized one is still a 413.
UNREADABLE_FORM = (ValueError, LookupError, RuntimeError, BadHttpMessage)


async def _posted_token(request: web.Request) -> str | None:
    try:
        form = await request.post()
    except UNREADABLE_FORM:
        return None
    token = form.get("token")
    return token if isinstance(token, str) else None


async def confirm(request: web.Request) -> web.Response:
    """The pending page's POST (sent by its script, or by its button)."""
    return await _post(request, "confirm")


async def resend(request: web.Request) -> web.Response:
    """The expired page's "send a new link" POST."""
    return await _post(request, "resend")


async def _post(request: web.Request, action: str) -> web.Response:
    confirmations = request.app[CONFIRMATIONS_KEY]
    app_id = request.match_info["app_id"]
    if not is_same_origin_post(request.headers, request.app[PUBLIC_ORIGIN_KEY]):
        # %r: the app id comes from the path, and must not be able to forge a log line.
        logger.info("refused a cross-site %s POST for app %r", action, app_id[:64])
        outcome = await confirmations.failed(app_id, Failure.CROSS_SITE, status=403)
    else:
        token = await _posted_token(request) or ""
        handler = confirmations.confirm if action == "confirm" else confirmations.resend
        outcome = await handler(app_id, token)
    return await request.app[PAGES_KEY].render(outcome, _accept_language(request))


async def link_without_token(request: web.Request) -> web.Response:
    outcome = await request.app[CONFIRMATIONS_KEY].failed(request.match_info["app_id"], Failure.MALFORMED)
    return await request.app[PAGES_KEY].render(outcome, _accept_language(request))


async def not_found(request: web.Request) -> web.Response:
    """Any other path under the service is a broken link: show the failed page, not a bare 404."""
    outcome = await request.app[CONFIRMATIONS_KEY].failed(None, Failure.UNKNOWN)
    return await request.app[PAGES_KEY].render(outcome, _accept_language(request))


async def health(_request: web.Request) -> web.Response:
    """Liveness: the process serves requests."""
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness, 200 or 503 with the same body as the other services': the database answers a
    query through the service's own read pool, and the outbox relay is relaying through its open
    channel to RabbitMQ (the events of confirmations leave through it). A probe opens no connection
    of its own: the endpoint is public, and must not make us open connections at a caller's rate."""
    database, broker = await _database_ok(request), _broker_ok(request)
    ok = database and broker
    return web.json_response({"status": "ready" if ok else "unavailable",
                              "database": "ok" if database else "unreachable",
                              "broker": "ok" if broker else "unreachable"}, status=200 if ok else 503)


async def _database_ok(request: web.Request) -> bool:
    try:
        # The timeout covers taking a connection from the pool too (a new one while the pool is empty).
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await request.app[CONFIRMATIONS_KEY].reads.fetchval("SELECT 1")
    except Exception as error:  # any failure to reach the database means not ready
        logger.warning("not ready: database unreachable (%s)", type(error).__name__)
        return False
    return True


def _broker_ok(request: web.Request) -> bool:
    """The state of the relay's own connection. A process started without its relay (a test that
    looks at the outbox rows) does not use the broker at all, so nothing of it waits for one."""
    relay = request.app.get(RELAY_KEY)
    return relay is None or relay.connected


async def metrics(_request: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
