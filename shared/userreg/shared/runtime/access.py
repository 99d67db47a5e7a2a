"""The access log and the request id of every HTTP service: one aiohttp middleware, `access_log`,
first in each service's list (so it sees the answer the others made, errors included).

Each request gets a request id: the client's `X-Request-Id` when it is a sane one (at most 64
characters of `A-Z a-z 0-9 . _ -`), else a new random one. It is sent back in the answer's
`X-Request-Id` header and named by every log record written while the request is served
(`logs.log_context`), with the app the path names.

One line per request, when it is answered: method, path, status and duration. The path is the
route's template with only harmless parameters filled in (an app id, an objectId, a template's kind
and name, a column, a message id, a static file's name, each only when it is a plain word);
every other parameter is written as its name in brackets, so a link's token, an API key or a
user's identity (an email address) never reaches a log: `/{appId}/[apiKey]/users/isvalidusertoken/[token]`.
The query string is never written. A path no route serves is written as its first segment alone
(`/nope/...`).
The probes (`/health`, `/ready`, `/metrics`), asked every few seconds, are logged at DEBUG; the
rest at INFO.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from userreg.shared.logs import log_context, plain_word

logger = logging.getLogger("userreg.access")

REQUEST_ID_HEADER = "X-Request-Id"
# The status written for a request whose client went away before the answer (nginx's number).
CLIENT_CLOSED_REQUEST = 499
PROBES = frozenset({"/health", "/ready", "/metrics"})
# Route parameters whose values may be written; the others are secrets or personal data.
SHOWN_PARAMETERS = frozenset({"appId", "app_id", "objectId", "object_id", "kind", "name", "column", "id", "filename"})
APP_PARAMETERS = ("appId", "app_id")
# aiohttp accepts any token as a method; a made-up one is cut short in the log.
MAX_METHOD_LENGTH = 16

_PARAMETER = re.compile(r"{(\w+)}")


def request_id_from(header: str | None) -> str:
    """The client's request id when it is sane, else a new random one."""
    return plain_word(header) or uuid.uuid4().hex


def logged_path(request: web.Request) -> str:
    """The request's path as the access log writes it (see the module's docstring)."""
    match_info = request.match_info
    resource = match_info.route.resource
    if resource is None:
        first, _, rest = request.path.lstrip("/").partition("/")
        shown = (plain_word(first) or "[unmatched]") if first else ""
        return f"/{shown}/..." if rest else f"/{shown}"
    template = resource.canonical
    if isinstance(resource, web.StaticResource):
        template += "/{filename}"

    def fill(parameter: re.Match[str]) -> str:
        name = parameter.group(1)
        value = plain_word(match_info.get(name)) if name in SHOWN_PARAMETERS else None
        return value if value is not None else f"[{name}]"

    return _PARAMETER.sub(fill, template)


def _app_id(request: web.Request) -> str | None:
    return next((value for name in APP_PARAMETERS if (value := plain_word(request.match_info.get(name)))), None)


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Serve the request within its log context, answer with its request id, write its line."""
    started = time.perf_counter()
    request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    status = 500
    with log_context(request_id=request_id, app_id=_app_id(request)):
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as http:
            status = http.status
            http.headers[REQUEST_ID_HEADER] = request_id
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            _write(request, status, time.perf_counter() - started)


def _write(request: web.Request, status: int, seconds: float) -> None:
    level = logging.DEBUG if request.path in PROBES else logging.INFO
    if not logger.isEnabledFor(level):
        return
    method, path = request.method[:MAX_METHOD_LENGTH], logged_path(request)
    milliseconds = round(seconds * 1000, 1)
    logger.log(
        level,
        "%s %s %s %.1fms",
        method,
        path,
        status,
        milliseconds,
        extra={"fields": {"method": method, "path": path, "status": status, "duration_ms": milliseconds}},
    )
