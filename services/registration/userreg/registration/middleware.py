"""The one place an exception becomes an HTTP answer, and every answer is counted and timed.

Coded errors become their `{"code", "message"}` envelope (a full hashing queue: 9009); the router's 404/405 and aiohttp's own
413 get the envelope too; the database being unreachable is 3021 with 503; anything else is logged
with a reference and answered 3021 with 500, never with a traceback or SQL.
"""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web

from userreg.registration import errors
from userreg.registration.metrics import LATENCY, REQUESTS
from userreg.shared.db.errors import database_unreachable
from userreg.shared.hashing import HashingBusy

logger = logging.getLogger(__name__)

UNMATCHED_ROUTE = "unmatched"


def error_response(error: errors.ApiError) -> web.Response:
    response = web.json_response(error.envelope(), status=error.http_status, headers=error.headers())
    if isinstance(error, errors.BodyTooLarge):
        response.force_close()  # the rest of an oversized body is not read: end the connection
    return response


def from_http_exception(http: web.HTTPException) -> errors.ApiError:
    """aiohttp's own HTTP errors (no route, wrong method, body over the limit) as coded errors."""
    if isinstance(http, web.HTTPMethodNotAllowed):
        allowed = sorted(http.allowed_methods)
        return errors.NoSuchRoute(f"{http.method} is not allowed here; allowed: {', '.join(allowed)}",
                                  status=405, allow=",".join(allowed))
    if isinstance(http, web.HTTPNotFound):
        return errors.NoSuchRoute()
    if isinstance(http, web.HTTPRequestEntityTooLarge):
        return errors.BodyTooLarge()
    if 400 <= http.status < 500:
        return errors.MalformedRequest(http.reason, status=http.status)
    return errors.RegistrationError("Unexpected server error", status=500)


def route_label(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def envelope_and_metrics(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    code = 0
    try:
        response = await handler(request)
    except errors.ApiError as error:
        code, response = error.code, error_response(error)
    except HashingBusy as busy:
        error = errors.HashingBusy(busy.retry_after_seconds)
        code, response = error.code, error_response(error)
    except web.HTTPException as http:
        error = from_http_exception(http)
        code, response = error.code, error_response(error)
    except Exception as unexpected:
        if database_unreachable(unexpected):
            logger.warning("database unreachable during %s %s: %s", request.method, route_label(request),
                           type(unexpected).__name__)
            error = errors.RegistrationError("The database is unreachable; try again shortly", status=503)
        else:
            reference = uuid.uuid4().hex[:12]
            logger.exception("unexpected error during %s %s (reference %s)", request.method,
                             route_label(request), reference)
            error = errors.RegistrationError(
                f"Unexpected server error (reference {reference})", status=500)
        code, response = error.code, error_response(error)
    route = route_label(request)
    REQUESTS.labels(route, request.method, str(response.status), str(code)).inc()
    LATENCY.labels(route).observe(time.perf_counter() - started)
    return response
