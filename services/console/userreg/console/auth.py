"""The HTTP side of operators' sessions: the session cookie, the client's address and scheme, and
the check every POST passes (same origin and the form's CSRF token). What a session is, and
signing in, is `service.operators`'."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from userreg.console.keys import SETTINGS
from userreg.console.rules.csrf import FIELD, csrf_matches
from userreg.console.rules.origin import is_https, is_same_origin_post, origin_of
from userreg.console.rules.sessions import COOKIE
from userreg.shared.ratelimits import client_address, client_key

logger = logging.getLogger(__name__)

# What aiohttp raises for a form it cannot parse (bad charset or encoding, broken multipart).
UNREADABLE_FORM = (ValueError, LookupError, RuntimeError, BadHttpMessage)


def served_over_https(request: web.Request) -> bool:
    """TLS on our socket, or a trusted proxy (TRUSTED_PROXIES) saying its client used https."""
    return is_https(
        request.scheme,
        request.remote,
        request.headers.get("X-Forwarded-Proto"),
        request.app[SETTINGS].trusted_proxy_networks,
    )


def own_origin(request: web.Request) -> str:
    return origin_of("https" if served_over_https(request) else "http", request.host)


def client_of(request: web.Request) -> str:
    """The key the client is counted under by the rate limits (its address, or its IPv6 /64)."""
    address = client_address(
        request.remote, request.headers.getall("X-Forwarded-For", []), request.app[SETTINGS].trusted_proxy_networks
    )
    return client_key(address)


def session_token(request: web.Request) -> str | None:
    token = request.cookies.get(COOKIE)
    return token if token and len(token) <= 64 else None


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """A browser-session cookie only script-free requests of our own site carry (HttpOnly,
    SameSite=Strict), sent over https only when the console is served over https."""
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Strict", secure=served_over_https(request))


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=served_over_https(request))


def is_own_post(request: web.Request) -> bool:
    """Whether a POST comes from one of our pages (fetch metadata or Origin); refusals are logged."""
    if is_same_origin_post(request.headers, own_origin(request)):
        return True
    logger.info("refused a cross-site POST to %s", request.match_info.route.name or "an unnamed route")
    return False


async def has_csrf_token(request: web.Request, token: str) -> bool:
    """Whether the posted form carries the CSRF token of the session `token`."""
    try:
        form = await request.post()
    except UNREADABLE_FORM:
        return False
    given = form.get(FIELD)
    return isinstance(given, str) and csrf_matches(token, given)
