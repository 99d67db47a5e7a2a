"""What wraps every request: error pages (never a traceback), the sign-in every page but the
public ones requires, the checks every POST passes, and the headers every response carries."""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from aiohttp import web

from userreg.console import auth
from userreg.console.keys import OPERATOR, OPERATOR_SESSIONS
from userreg.console.views.common import render
from userreg.shared.apps import AppNotFound
from userreg.shared.db.errors import database_unreachable

logger = logging.getLogger(__name__)

# Paths anyone may open; everything else needs a signed-in operator.
PUBLIC_PATHS = frozenset({"/sign-in", "/health", "/ready"})
STATIC_PREFIX = "/static/"


@web.middleware
async def error_pages(request: web.Request, handler) -> web.StreamResponse:
    """Unknown paths and apps show a "not found" page; our own failures an error page."""
    try:
        return await handler(request)
    except (web.HTTPNotFound, AppNotFound):
        if request.path.startswith(STATIC_PREFIX):
            raise
        return render(
            request,
            "error.html",
            status=404,
            title="Not found",
            message="There is nothing at this address. It may have been deleted.",
        )
    except web.HTTPException:
        raise
    except Exception as error:
        route = request.match_info.route.name or "unnamed route"
        if database_unreachable(error):
            # The error's text may quote SQL parameters: its type is enough to tell the outage.
            logger.error("%s %s failed: database unreachable (%s)", request.method, route, type(error).__name__)
            response = render(
                request,
                "error.html",
                status=503,
                title="Database unreachable",
                message="The console cannot reach its database. Try again in a moment.",
            )
            response.headers["Retry-After"] = "5"
            return response
        logger.exception("%s %s failed", request.method, route)
        return render(
            request,
            "error.html",
            status=500,
            title="Something went wrong",
            message="The console could not do this. The error is in its log.",
        )


@web.middleware
async def signed_in(request: web.Request, handler) -> web.StreamResponse:
    """Every page but the public ones runs for a signed-in operator (`keys.OPERATOR`); the
    others redirect to the sign-in page, which comes back here afterwards. Every POST must come
    from our own pages (`auth.is_own_post`) and, but the sign-in form's, carry the session's CSRF
    token: a view never sees a forged one."""
    public = request.path in PUBLIC_PATHS or request.path.startswith(STATIC_PREFIX)
    if request.method == "POST" and not auth.is_own_post(request):
        return _refused(request)
    if public:
        return await handler(request)
    token = auth.session_token(request)
    operator = await request.app[OPERATOR_SESSIONS].operator_of(token) if token else None
    if operator is None:
        back = request.path_qs if request.method == "GET" else ""
        raise web.HTTPSeeOther(location="/sign-in" + (f"?{urlencode({'next': back})}" if back else ""))
    request[OPERATOR] = operator
    if request.method == "POST" and not await auth.has_csrf_token(request, operator.session_token):
        logger.info(
            "refused a POST to %s without this session's CSRF token",
            request.match_info.route.name or "an unnamed route",
        )
        return _refused(request)
    return await handler(request)


def _refused(request: web.Request) -> web.Response:
    return render(
        request,
        "error.html",
        status=403,
        title="Form refused",
        message="This form did not come from this console's page, or the page was too old. "
        "Go back, reload the page and try again.",
    )


async def baseline_headers(request: web.Request, response: web.StreamResponse) -> None:
    """What every response carries, pages or not (pages set stricter values of their own)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    headers.setdefault("X-Frame-Options", "DENY")
    static = request.path.startswith(STATIC_PREFIX)
    headers.setdefault("Cache-Control", "public, max-age=3600" if static else "no-store")
