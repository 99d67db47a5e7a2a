"""The one place an exception becomes an HTTP answer, every answer of the API gets its CORS headers,
and every answer is counted and timed.

Coded errors become their `{"code", "message"}` envelope (a full hashing queue: 9009); the
router's 404/405 and aiohttp's own 413 get the envelope too; the database being unreachable is
3021 with 503; anything else is logged with a reference (the request id) and answered 3021 with
500, never with a traceback or SQL.

CORS (docs/api.md, Browser clients, decided by `rules.cors`): a path `/{appId}/{apiKey}/…` is the API. Its preflights
are answered here (204), whatever the route, after the app lookup alone (the tenant cache's); every
other answer of it, errors included, carries the headers of the app's `allowedOrigins`: the
authenticated app's (`keys.TENANT`), else looked up like a preflight's. A request naming no app or
a wrong key (2002) gets those of `*`: its answer is the same 2002 envelope either way, so a page
can read it and learns nothing, not even whether the appId exists. Should the lookup fail (the
database away), an error answer carries `*` too (it is an envelope that says only that); a
preflight then fails (503, no CORS headers): nothing is let through unasked.
"""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web

from userreg.registration import errors
from userreg.registration.keys import REGISTRAR, TENANT
from userreg.registration.metrics import LATENCY, REQUESTS
from userreg.registration.rules import cors
from userreg.shared.db.errors import database_unreachable
from userreg.shared.hashing import HashingBusy
from userreg.shared.logs import REQUEST_ID

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"
PREFLIGHT_ROUTE = "preflight"  # the route label of every preflight, which no route of the table serves


def error_response(error: errors.ApiError) -> web.Response:
    response = web.json_response(error.envelope(), status=error.http_status, headers=error.headers())
    if isinstance(error, errors.BodyTooLarge):
        response.force_close()  # the rest of an oversized body is not read: end the connection
    return response


def from_http_exception(http: web.HTTPException) -> errors.ApiError:
    """aiohttp's own HTTP errors (no route, wrong method, body over the limit) as coded errors."""
    if isinstance(http, web.HTTPMethodNotAllowed):
        allowed = sorted(http.allowed_methods)
        return errors.NoSuchRoute(
            f"{http.method} is not allowed here; allowed: {', '.join(allowed)}", status=405, allow=",".join(allowed)
        )
    if isinstance(http, web.HTTPNotFound):
        return errors.NoSuchRoute()
    if isinstance(http, web.HTTPRequestEntityTooLarge):
        return errors.BodyTooLarge()
    if 400 <= http.status < 500:
        return errors.MalformedRequest(http.reason, status=http.status)
    return errors.RegistrationError("Unexpected server error", status=500)


def as_api_error(request: web.Request, raised: Exception) -> errors.ApiError:
    """Any other exception a handler raised as a coded error (an unexpected one is logged with its
    traceback)."""
    if isinstance(raised, HashingBusy):
        return errors.HashingBusy(raised.retry_after_seconds)
    if isinstance(raised, web.HTTPException):
        return from_http_exception(raised)
    if database_unreachable(raised):
        logger.warning(
            "database unreachable during %s %s: %s", request.method, route_label(request), type(raised).__name__
        )
        return errors.RegistrationError("The database is unreachable; try again shortly", status=503)
    # The request id is the reference: the client has it (X-Request-Id), every line names it.
    reference = REQUEST_ID.get() or uuid.uuid4().hex[:12]
    logger.error(
        "unexpected error during %s %s (reference %s)",
        request.method,
        route_label(request),
        reference,
        exc_info=raised,
    )
    return errors.RegistrationError(f"Unexpected server error (reference {reference})", status=500)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


def api_credentials(request: web.Request) -> tuple[str, str] | None:
    """(appId, apiKey) of a path of the API, `/{appId}/{apiKey}/…`, whether a route serves it or
    not; None for the operations endpoints (`/health`, `/openapi.json`, …)."""
    info = request.match_info
    if "appId" in info and "apiKey" in info:
        return info["appId"], info["apiKey"]
    parts = request.path.split("/", 3)
    if len(parts) >= 3 and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None


async def _cors_policy(request: web.Request, credentials: tuple[str, str]) -> cors.CorsPolicy:
    tenant = request.get(TENANT)
    if tenant is not None:
        return tenant.rules.cors
    return await request.app[REGISTRAR].cors_policy(*credentials)


async def preflight(request: web.Request, credentials: tuple[str, str]) -> web.Response:
    """204 with what the page may send (nothing for an origin that is not allowed)."""
    policy = await _cors_policy(request, credentials)
    return web.Response(
        status=204,
        headers=cors.preflight_headers(
            policy, request.headers.get(cors.ORIGIN), request.headers.get(cors.REQUEST_HEADERS)
        ),
    )


async def add_cors_headers(
    request: web.Request, response: web.StreamResponse, credentials: tuple[str, str], code: int
) -> None:
    """The CORS headers of an answer of the API. Only an error answer can lack an authenticated
    app: a 2002, a 503 (the database away: not asked again) and a failed lookup get those of `*`."""
    if TENANT not in request and (code == errors.InvalidApplication.code or response.status == 503):
        policy = cors.ANY
    else:
        try:
            policy = await _cors_policy(request, credentials)
        except Exception as error:
            logger.debug("no CORS policy for an error answer: %s", type(error).__name__)
            policy = cors.ANY
    for name, value in cors.response_headers(policy, request.headers.get(cors.ORIGIN)).items():
        if name == cors.VARY and cors.VARY in response.headers:
            value = f"{response.headers[cors.VARY]}, {value}"
        response.headers[name] = value


@web.middleware
async def envelope_and_metrics(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    code = 0
    credentials = api_credentials(request)
    is_preflight = False
    try:
        if credentials is not None and cors.is_preflight(request.method, request.headers):
            is_preflight = True
            response = await preflight(request, credentials)
        else:
            response = await handler(request)
    except errors.ApiError as error:
        code, response = error.code, error_response(error)
    except Exception as raised:
        coded = as_api_error(request, raised)
        code, response = coded.code, error_response(coded)
    if credentials is not None and not is_preflight:
        await add_cors_headers(request, response, credentials, code)
    route = PREFLIGHT_ROUTE if is_preflight else route_label(request)
    REQUESTS.labels(route, request.method, str(response.status), str(code)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return response
