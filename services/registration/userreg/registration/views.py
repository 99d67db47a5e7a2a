"""HTTP views: decode the request, call one service-layer operation, encode the answer.

A view reads the path, the headers and the body (a JSON object's pairs, `rules.body`), hands the
service domain values and encodes what it returns with `representation.user_json`. Errors are
raised as coded exceptions and become envelopes in `middleware`.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from userreg.registration import errors, metrics
from userreg.registration.keys import (
    ACCOUNTS,
    ENGINE,
    OPENAPI,
    REGISTRAR,
    RELAY,
    SETTINGS,
    TENANT,
    TRUSTED_PROXIES,
)
from userreg.registration.profiles import Caller
from userreg.registration.representation import USER_TOKEN, app_info_json, user_class_json, user_json
from userreg.registration.rules.body import Pairs, parse_json_object
from userreg.registration.rules.credentials import is_server_key, login_credentials, password_to_verify
from userreg.registration.rules.status import status_from_body
from userreg.registration.tenants import Tenant
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


async def read_json_object(request: web.Request, error: type[errors.ApiError]) -> Pairs:
    """The body as the pairs of one JSON object (9003, then `error` with 415 or 400)."""
    return parse_json_object(request.headers.get(hdrs.CONTENT_TYPE), await read_body(request), error)


def _locale(request: web.Request) -> str:
    return preferred_language(request.headers.get(hdrs.ACCEPT_LANGUAGE))


async def _tenant(
    request: web.Request, *, server_only: bool = False, limited: bool = False, registering: bool = False
) -> Tenant:
    """The app the path names, for its key (2002, 3054); `limited` operations count against the
    app's rate limit for the client's address (9008); `registering`: 3009 for a closed app. The
    request keeps it: its answer's CORS headers follow the app's `allowedOrigins`."""
    tenant = await request.app[REGISTRAR].authenticate(
        request.match_info["appId"],
        request.match_info["apiKey"],
        server_only=server_only,
        client=_client(request) if limited else None,
        registering=registering,
    )
    request[TENANT] = tenant
    return tenant


def _client(request: web.Request) -> str:
    """Who the rate limits count: the TCP peer, or what a trusted proxy says it forwarded."""
    trusted_proxies = request.app[TRUSTED_PROXIES]
    return client_key(client_address(request.remote, request.headers.getall(FORWARDED_FOR, ()), trusted_proxies))


def _empty_ok() -> web.Response:
    return web.Response(status=200)


async def register(request: web.Request) -> web.Response:
    # 2002, 9008 and 3009 before the body is read (the documented order: a closed app does not
    # care how big the body is), then 9003 and 3038 here, the rest in the service.
    tenant = await _tenant(request, limited=True, registering=True)
    pairs = await read_json_object(request, errors.MissingBody)
    user = await request.app[REGISTRAR].create_user(tenant, pairs, locale=_locale(request))
    return web.json_response(user_json(user))


async def register_guest(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    session = await request.app[REGISTRAR].register_guest(tenant, locale=_locale(request))
    return web.json_response(user_json(session.user, user_token=session.user_token))


async def login(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    login_value, password = login_credentials(await read_json_object(request, errors.MalformedRequest))
    session = await request.app[REGISTRAR].log_in(tenant, login_value, password)
    return web.json_response(user_json(session.user, user_token=session.user_token))


async def resend_confirmation(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    await request.app[ACCOUNTS].resend_confirmation(tenant, request.match_info["identity"])
    return _empty_ok()


async def set_status(request: web.Request) -> web.Response:
    tenant = await _tenant(request, server_only=True)
    target = status_from_body(await read_json_object(request, errors.MalformedRequest))
    await request.app[REGISTRAR].set_status(tenant, request.match_info["objectId"], target)
    return _empty_ok()


async def create_confirmation_url(request: web.Request) -> web.Response:
    tenant = await _tenant(request, server_only=True)
    url = await request.app[ACCOUNTS].create_confirmation_url(tenant, request.match_info["identity"])
    return web.json_response({"confirmationURL": url})


async def app_info(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    return web.json_response(app_info_json(tenant.app))


async def is_valid_user_token(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    valid = await request.app[ACCOUNTS].is_valid_user_token(tenant, request.match_info["token"])
    return web.json_response(valid)


async def logout(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    await request.app[ACCOUNTS].log_out(tenant, request.headers.get(USER_TOKEN))
    return _empty_ok()


async def restore_password(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    await request.app[ACCOUNTS].restore_password(tenant, request.match_info["identity"])
    return _empty_ok()


def _caller(request: web.Request, tenant: Tenant) -> Caller:
    """Who asks: the server key, or the session of the `user-token` header."""
    return Caller(
        server_key=is_server_key(tenant.app.server_api_key, request.match_info["apiKey"]),
        user_token=request.headers.get(USER_TOKEN),
    )


async def update_user(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    caller = _caller(request, tenant)
    pairs = await read_json_object(request, errors.MissingBody)
    user = await request.app[REGISTRAR].profiles.update(tenant, request.match_info["objectId"], pairs, caller)
    return web.json_response(user_json(user))


async def read_user(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    user = await request.app[REGISTRAR].profiles.read(tenant, request.match_info["objectId"], _caller(request, tenant))
    return web.json_response(user_json(user))


async def verify_password(request: web.Request) -> web.Response:
    tenant = await _tenant(request, limited=True)
    password = password_to_verify(await read_json_object(request, errors.MalformedRequest))
    valid = await request.app[REGISTRAR].profiles.verify_password(tenant, request.headers.get(USER_TOKEN), password)
    return web.json_response({"valid": valid})


async def user_class_props(request: web.Request) -> web.Response:
    tenant = await _tenant(request)
    return web.json_response(user_class_json(tenant.rules))


# The operations endpoints, as every service answers them. Ready: PostgreSQL answers through the
# service's own pool, and the outbox relay runs and relays through its open channel to RabbitMQ.
health = ops.health
ready = ops.ready_view(database=ops.reachable(ops.select_one(ENGINE)), broker=ops.running(RELAY))
prometheus_metrics = ops.metrics_view(lambda app: metrics.scrape(app[ENGINE]))


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI], content_type="application/json")
