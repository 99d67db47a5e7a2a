"""HTTP views: decode the request, call one service-layer operation, encode the answer.

Errors are raised as coded exceptions and become envelopes in `middleware`.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from userreg.registration import errors, metrics, rules
from userreg.registration.keys import ENGINE, OPENAPI, REGISTRAR, RELAY, SETTINGS, TRUSTED_PROXIES
from userreg.shared.locales import preferred_language
from userreg.shared.ratelimits import client_address, client_key
from userreg.shared.runtime import ops

FORWARDED_FOR = "X-Forwarded-For"


async def read_body(request: web.Request) -> bytes:
    """The body, refused with 9003 before it is read when it is over `max_body_bytes`."""
    limit = request.app[SETTINGS].max_body_bytes
    too_large = errors.BodyTooLarge(f"The request body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    try:
        # The application's client_max_size is the same limit: a body without Content-Length is
        # read in chunks and refused as soon as it passes it.
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None


def _locale(request: web.Request) -> str:
    return preferred_language(request.headers.get(hdrs.ACCEPT_LANGUAGE))


def _content_type(request: web.Request) -> str | None:
    return request.headers.get(hdrs.CONTENT_TYPE)


async def _tenant(request: web.Request, *, server_only: bool = False, limited: bool = False):
    """The app the path names, for its key (2002, 3054); `limited` operations count against the
    app's rate limit for the client's address (9008)."""
    return await request.app[REGISTRAR].authenticate(
        request.match_info["appId"], request.match_info["apiKey"], server_only=server_only,
        client=_client(request) if limited else None)


def _client(request: web.Request) -> str:
    """Who the rate limits count: the TCP peer, or what a trusted proxy says it forwarded."""
    address = client_address(request.remote, request.headers.getall(FORWARDED_FOR, ()),
                             request.app[TRUSTED_PROXIES])
    return client_key(address)


def _empty_ok() -> web.Response:
    return web.Response(status=200)


async def register(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    # 3009 comes before 9003 (the documented order): a closed app does not care how big the body is.
    rules.check_registration_open(tenant.rules)
    body = await read_body(request)
    user = await request.app[REGISTRAR].register(tenant, _content_type(request), body,
                                                 locale=_locale(request))
    return web.json_response(user)


async def register_guest(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    return web.json_response(await request.app[REGISTRAR].register_guest(tenant, locale=_locale(request)))


async def login(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    pairs = rules.parse_json_object(_content_type(request), await read_body(request), errors.MalformedRequest)
    login_value, password = rules.login_credentials(pairs)
    return web.json_response(await request.app[REGISTRAR].log_in(tenant, login_value, password))


async def resend_confirmation(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    await request.app[REGISTRAR].resend_confirmation(tenant, request.match_info["identity"])
    return _empty_ok()


async def set_status(request: web.Request) -> web.Response:
    tenant = await _tenant(request, server_only=True)
    pairs = rules.parse_json_object(_content_type(request), await read_body(request), errors.MalformedRequest)
    target = rules.status_from_body(pairs)
    await request.app[REGISTRAR].set_status(tenant, request.match_info["objectId"], target)
    return _empty_ok()


async def create_confirmation_url(request: web.Request) -> web.Response:
    tenant = await _tenant(request, server_only=True)
    url = await request.app[REGISTRAR].create_confirmation_url(tenant, request.match_info["identity"])
    return web.json_response({"confirmationURL": url})


# The operations endpoints, as every service answers them. Ready: PostgreSQL answers through the
# service's own pool, and the outbox relay runs and relays through its open channel to RabbitMQ.
health = ops.health
ready = ops.ready_view(database=ops.reachable(ops.select_one(ENGINE)), broker=ops.running(RELAY))
prometheus_metrics = ops.metrics_view(lambda app: metrics.scrape(app[ENGINE]))


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI], content_type="application/json")
