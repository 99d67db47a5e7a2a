"""What wraps every request: the failed page for unknown paths, an error page (never a traceback)
for our own failures, and the baseline headers every response carries."""

from __future__ import annotations

import logging

from aiohttp import web

from userreg.confirmation_web import views
from userreg.confirmation_web.keys import PAGES
from userreg.shared.db.errors import database_unreachable

logger = logging.getLogger(__name__)


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
            logger.error(
                "%s %s failed: database unreachable (%s)", request.method, _route_name(request), type(error).__name__
            )
            return request.app[PAGES].render_error(503, request.headers.get("Accept-Language"))
        logger.exception("%s %s failed", request.method, _route_name(request))
        return request.app[PAGES].render_error(500, request.headers.get("Accept-Language"))


def _route_name(request: web.Request) -> str:
    """The route, never the path: a link's path holds its token."""
    return request.match_info.route.name or "unnamed route"


async def baseline_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What every response carries, pages or not; pages set stricter values of their own
    (an `on_response_prepare` signal, so it covers static files and error answers too)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    static = request.path.startswith("/static/")
    headers.setdefault("Cache-Control", "public, max-age=3600" if static else "no-store")
