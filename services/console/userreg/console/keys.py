"""Typed keys of what the console's `web.Application` holds (set by `app.create_app` and its
`cleanup_ctx` steps) and of what a request carries, so that views and middleware need not import
the composition root. The services of each page area are kept under keys of that area's own
(defined beside its views, built by its `build(app)`)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from userreg.console.pages import Pages
from userreg.console.service.operators import OperatorSessions, SignedInOperator
from userreg.registration.operations import Registrar
from userreg.shared.hashing import PasswordHashing
from userreg.shared.messaging import Topology
from userreg.shared.ratelimits import RateLimiter
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker)  # one `async with sessions.begin()` per change
HASHING = web.AppKey("hashing", PasswordHashing)  # argon2id workers (one): sign-in, new users' passwords
RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)  # shared.ratelimits over PostgreSQL
TOPOLOGY = web.AppKey("topology", Topology)  # the exchange and queue names
TEMPLATE_STORE = web.AppKey("template_store", TemplateStore)  # the sandboxed email/page templates
REGISTRAR = web.AppKey("registrar", Registrar)  # registration's service layer (registration.operations)
PAGES = web.AppKey("pages", Pages)  # the console's own Jinja2 pages
OPERATOR_SESSIONS = web.AppKey("operator_sessions", OperatorSessions)  # sign-in, sessions, sign-out
# Base URLs of the services the System page asks for /health and /ready, by service name.
SERVICE_URLS = web.AppKey("service_urls", dict)

# Set by the sign-in middleware on every request but the public ones (/sign-in, /health, /ready, /static).
OPERATOR = web.RequestKey("operator", SignedInOperator)
