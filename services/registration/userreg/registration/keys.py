"""Typed keys of what the registration `web.Application` holds (set in its `cleanup_ctx`)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.registration.service import Registrar
from userreg.shared.runtime.tasks import Supervised
from userreg.shared.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
REGISTRAR = web.AppKey("registrar", Registrar)
RELAY = web.AppKey("outbox_relay", Supervised)  # the supervised OutboxRelay
OPENAPI = web.AppKey("openapi", str)  # the OpenAPI document as served, built once by `create_app`
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple)  # TRUSTED_PROXIES parsed once, for every request
