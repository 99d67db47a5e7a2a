"""The confirmation-web application: `create_app(settings)` wires the routes, the database, the
template store and the outbox relay. Nothing connects until the app starts (cleanup_ctx)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from importlib import resources

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.confirmation_web import repository, views
from userreg.confirmation_web.handlers import Confirmations
from userreg.confirmation_web.pages import PageRenderer
from userreg.confirmation_web.rules import origin_of
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.db.errors import database_unreachable
from userreg.shared.messaging import Topology
from userreg.shared.outbox import OutboxRelay
from userreg.shared.runtime.tasks import Supervised, supervised_in
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

logger = logging.getLogger(__name__)

SETTINGS_KEY = web.AppKey("settings", Settings)
ENGINE_KEY = web.AppKey("engine", AsyncEngine)
STATIC = resources.files("userreg.confirmation_web").joinpath("static")
# The forms post a token and nothing else: a small body limit is plenty.
MAX_BODY_BYTES = 16 * 1024


def create_app(settings: Settings, *, run_outbox_relay: bool = True) -> web.Application:
    """The aiohttp application of confirmation-web. The outbox relay that publishes the
    `user.confirmed` and `user.confirmation_requested` events runs in the same process unless
    `run_outbox_relay` is off (for a test that wants to look at the outbox rows themselves)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[error_pages])
    app[SETTINGS_KEY] = settings
    app[views.PUBLIC_ORIGIN_KEY] = origin_of(settings.public_confirmation_url)
    app.cleanup_ctx.append(_database)
    if run_outbox_relay:
        app.cleanup_ctx.append(supervised_in(views.RELAY_KEY, _outbox_relay))
    app.on_response_prepare.append(_baseline_headers)
    app.router.add_get("/health", views.health)
    app.router.add_get("/ready", views.ready)
    app.router.add_get("/metrics", views.metrics)
    app.router.add_static("/static", str(STATIC), name="static", append_version=False)
    app.router.add_get("/{app_id}/confirm/{token}", views.open_link, name="link")
    app.router.add_post("/{app_id}/confirm", views.confirm, name="confirm")
    # The address bar shows this path after the POST; opening it again is a link without token.
    app.router.add_get("/{app_id}/confirm", views.link_without_token, name="confirm-page")
    app.router.add_post("/{app_id}/confirm/resend", views.resend, name="resend")
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    engine = create_engine(settings)
    reads = await repository.open_read_pool(settings)
    sessions = create_sessionmaker(engine)
    app[ENGINE_KEY] = engine
    app[views.CONFIRMATIONS_KEY] = Confirmations(sessions, reads, settings.public_confirmation_url,
                                                 settings.resend_cooldown_seconds)
    app[views.PAGES_KEY] = PageRenderer(TemplateStore.from_settings(settings), sessions,
                                        settings.public_confirmation_url)
    yield
    await reads.close()
    await engine.dispose()


def _outbox_relay(app: web.Application) -> Supervised:
    """Publishes the events of confirmations; `/ready` reads its state."""
    settings = app[SETTINGS_KEY]
    relay = OutboxRelay(app[ENGINE_KEY], settings.amqp_dsn, Topology.from_settings(settings),
                        batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds)
    return Supervised("outbox-relay", relay.run, ready=lambda: relay.connected)


@web.middleware
async def error_pages(request: web.Request, handler) -> web.StreamResponse:
    """Unknown paths show the failed page; our own failures show an error page, never a traceback."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        if request.method not in ("GET", "HEAD", "POST") or request.path.startswith("/static/"):
            raise
        return await views.not_found(request)
    except web.HTTPException:
        raise
    except Exception as error:
        if database_unreachable(error):
            # The error's text may quote SQL parameters: its type is enough to tell the outage.
            logger.error("%s %s failed: database unreachable (%s)", request.method, _route_name(request),
                         type(error).__name__)
            return request.app[views.PAGES_KEY].render_error(503, request.headers.get("Accept-Language"))
        logger.exception("%s %s failed", request.method, _route_name(request))
        return request.app[views.PAGES_KEY].render_error(500, request.headers.get("Accept-Language"))


def _route_name(request: web.Request) -> str:
    """The route, never the path: a link's path holds its token."""
    return request.match_info.route.name or "unnamed route"


async def _baseline_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What every response carries, pages or not; pages set stricter values of their own."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    static = request.path.startswith("/static/")
    headers.setdefault("Cache-Control", "public, max-age=3600" if static else "no-store")
