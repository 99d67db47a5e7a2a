"""Which web pages may read the API's answers (docs/api.md, Browser clients): an app's `allowedOrigins` and the CORS
headers it gives each request, as plain decisions (the middleware applies them).

`allowedOrigins` is `*` (any origin, the default) or origins separated by spaces, each stored in
the form a browser sends in its `Origin` header (`scheme://host[:port]`: lower case, the host in
IDNA form, without the scheme's default port), so that a request's origin is allowed exactly when
it is one of them. An origin that is not allowed gets no CORS header at all: its page cannot read
the answer, and its preflight fails.

The answers carry no credentials (the API uses no cookies: a `user-token` is a header), so `*` is
a valid answer for any request of an app that allows any origin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from userreg.shared.origins import ANY_ORIGIN, normalize_origin

logger = logging.getLogger(__name__)

ORIGIN = "Origin"
REQUEST_METHOD = "Access-Control-Request-Method"
REQUEST_HEADERS = "Access-Control-Request-Headers"
ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
MAX_AGE = "Access-Control-Max-Age"
VARY = "Vary"

# The methods the API serves, and the request headers a page may send: the official SDKs send
# `Content-Type`, `user-token` and `application-type`; the others are harmless.
ALLOWED_METHODS = ("GET", "POST", "PUT")
ALLOWED_REQUEST_HEADERS = (
    "Content-Type",
    "user-token",
    "application-type",
    "Accept",
    "Accept-Language",
    "Content-Language",
)
_ALLOWED_REQUEST_HEADER_KEYS = frozenset(name.lower() for name in ALLOWED_REQUEST_HEADERS)
# What a page may read besides the safelisted headers: when to retry after 9001, 9008 and 9009, and
# the request id its logs can quote (`shared/runtime/access.py`).
EXPOSED_HEADERS = ("Retry-After", "X-Request-Id")
# How long a browser keeps a preflight's answer: a changed `allowedOrigins` reaches browsers that
# cached the old answer within this long (Chromium keeps it 2 hours at most anyway).
MAX_AGE_SECONDS = 600


@dataclass(frozen=True)
class CorsPolicy:
    """The origins whose pages may read an app's answers; `origins` None: any origin."""

    origins: frozenset[str] | None = None

    @property
    def any_origin(self) -> bool:
        return self.origins is None


ANY = CorsPolicy()


def policy_of(setting: str | None) -> CorsPolicy:
    """The policy of a stored `allowedOrigins`. An entry that is not an origin (written around the
    admin command) is left out rather than refusing the app's every browser."""
    entries = (setting or ANY_ORIGIN).split()
    if not entries or ANY_ORIGIN in entries:
        return ANY
    origins = {normalize_origin(entry) for entry in entries}
    if None in origins:
        logger.warning("allowedOrigins %r has entries that are not origins; they are ignored", setting)
    return CorsPolicy(frozenset(origin for origin in origins if origin is not None))


def allowed_origin(policy: CorsPolicy, origin: str | None) -> str | None:
    """The `Access-Control-Allow-Origin` of an answer to a page of `origin` (the `Origin` header,
    None without one): `*` when any origin may read it, the origin itself when it is one of the
    app's, else None (no CORS header)."""
    if policy.any_origin:
        return ANY_ORIGIN
    if origin is None or policy.origins is None or origin not in policy.origins:
        return None
    return origin


def is_preflight(method: str, headers: Mapping[str, str]) -> bool:
    """A browser asking before a request it may not send unasked (docs/api.md, Browser clients)."""
    return method == "OPTIONS" and REQUEST_METHOD in headers


def response_headers(policy: CorsPolicy, origin: str | None) -> dict[str, str]:
    """The CORS headers of any answer (errors included) to a request from `origin`."""
    headers = {} if policy.any_origin else {VARY: ORIGIN}  # the answer depends on the Origin
    allowed = allowed_origin(policy, origin)
    if allowed is not None:
        headers[ALLOW_ORIGIN] = allowed
        headers[EXPOSE_HEADERS] = ", ".join(EXPOSED_HEADERS)
    return headers


def preflight_headers(policy: CorsPolicy, origin: str | None, requested_headers: str | None) -> dict[str, str]:
    """The headers of the 204 a preflight gets: what the page may send, for how long it may
    remember it; only `Vary` for an origin that is not allowed (the browser then refuses)."""
    vary = [REQUEST_HEADERS] if policy.any_origin else [ORIGIN, REQUEST_HEADERS]
    headers = {VARY: ", ".join(vary)}
    allowed = allowed_origin(policy, origin)
    if allowed is None:
        return headers
    headers.update(
        {
            ALLOW_ORIGIN: allowed,
            ALLOW_METHODS: ", ".join(ALLOWED_METHODS),
            ALLOW_HEADERS: ", ".join(allowed_request_headers(requested_headers)),
            MAX_AGE: str(MAX_AGE_SECONDS),
        }
    )
    return headers


def allowed_request_headers(requested: str | None) -> Iterable[str]:
    """The requested headers (`Access-Control-Request-Headers`) when every one is allowed, else
    the allowed ones: a browser then refuses the request that wanted another header."""
    names = [name.strip().lower() for name in (requested or "").split(",") if name.strip()]
    if names and all(name in _ALLOWED_REQUEST_HEADER_KEYS for name in names):
        return names
    return ALLOWED_REQUEST_HEADERS
