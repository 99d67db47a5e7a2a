"""Typed keys of what the registration `web.Application` holds (set in its `cleanup_ctx`), and of
what a request carries between the views and the middleware."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.registration.accounts import Accounts
from userreg.registration.service import Registrar
from userreg.registration.tenants import Tenant
from userreg.shared.ratelimits import Network
from userreg.shared.runtime.tasks import Supervised
from userreg.shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
REGISTRAR = web.AppKey("registrar", Registrar)
ACCOUNTS = web.AppKey("accounts", Accounts)  # the registrar's: sessions and password recovery
RELAY = web.AppKey("outbox_relay", Supervised)  # the supervised OutboxRelay
OPENAPI = web.AppKey("openapi", str)  # the OpenAPI document as served, built once by `create_app`
# TRUSTED_PROXIES parsed once, for every request
TRUSTED_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies")
# The app a request authenticated as (set by the view): its answer's CORS headers follow its policy.
TENANT = web.RequestKey("tenant", Tenant)
