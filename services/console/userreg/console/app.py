"""The composition root of the console: `create_app(settings)` builds the application and, in
`cleanup_ctx` steps run in order when it starts (undone in reverse when it stops), the engine and
its sessions, one password-hashing worker, the rate limiter, the registration service layer
(`registration.operations`, for users made in the console), the template store, the pages, the
operator sessions, and the services of every page area. Nothing connects until the app starts;
fakes of the outward dependencies can be passed in."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from importlib import resources

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.console.keys import (
    ENGINE,
    HASHING,
    OPERATOR_SESSIONS,
    PAGES,
    RATE_LIMITER,
    REGISTRAR,
    SERVICE_URLS,
    SESSIONS,
    SETTINGS,
    TEMPLATE_STORE,
    TOPOLOGY,
)
from userreg.console.middleware import baseline_headers, error_pages, signed_in
from userreg.console.pages import Pages
from userreg.console.service.operators import OperatorSessions, SignInLimits
from userreg.console.service.system import service_urls_of
from userreg.console.views import AREAS
from userreg.registration.operations import open_registrar
from userreg.shared.clock import utcnow
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.hashing import Argon2Parameters, PasswordHashing
from userreg.shared.messaging import Topology
from userreg.shared.ratelimits import RateLimiter
from userreg.shared.runtime.access import access_log
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

STATIC = resources.files("userreg.console").joinpath("static")
# Forms carry settings, template sources (up to the editor's limit) and a user's properties.
MAX_BODY_BYTES = 1024 * 1024
# Operators sign in rarely and create a user now and then: one argon2id worker is plenty.
HASH_WORKERS = 1

CleanupStep = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    hashing: PasswordHashing | None = None,
    sign_in_limits: SignInLimits | None = None,
    clock: Callable[[], datetime] | None = None,
) -> web.Application:
    """The aiohttp application of the console.

    The keywords replace an outward dependency (None: the real one, from the settings): the
    SQLAlchemy `engine` and the password `hashing` (their caller closes what it passes in), the
    `sign_in_limits` and the `clock`. (Where the System page asks the services is a setting,
    CONSOLE_SERVICE_URLS.)"""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[access_log, error_pages, signed_in])
    app[SETTINGS] = settings
    app[TOPOLOGY] = Topology.from_settings(settings)
    app[PAGES] = Pages()
    app[TEMPLATE_STORE] = TemplateStore.from_settings(settings)
    app[SERVICE_URLS] = service_urls_of(settings)
    app.cleanup_ctx.extend(
        (
            _engine(engine),
            _password_hashing(hashing),
            _registrar,
            _operator_sessions(sign_in_limits or SignInLimits(), clock or utcnow),
            _area_services,
        )
    )
    app.on_response_prepare.append(baseline_headers)
    app.router.add_static("/static", str(STATIC), name="static", append_version=False)
    for area in AREAS:
        area.add_routes(app.router)
    return app


def _engine(given: AsyncEngine | None) -> CleanupStep:
    """The engine (`given`, or one of the settings', disposed when the app stops), its sessions
    and the rate limiter over it."""

    async def engine(app: web.Application) -> AsyncIterator[None]:
        created = given if given is not None else create_engine(app[SETTINGS], application_name="userreg-console")
        app[ENGINE] = created
        app[SESSIONS] = create_sessionmaker(created)
        app[RATE_LIMITER] = RateLimiter(created)
        yield
        if given is None:
            await created.dispose()

    return engine


def _password_hashing(given: PasswordHashing | None) -> CleanupStep:
    """The argon2id worker that checks operators' passwords and hashes new users' passwords off the
    event loop: `given`, or one of the settings' parameters, stopped when the app stops."""

    async def password_hashing(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[HASHING] = given
            yield
            return
        settings = app[SETTINGS]
        started = PasswordHashing(
            Argon2Parameters.from_settings(settings), HASH_WORKERS, queue_seconds=settings.hash_queue_seconds
        )
        await started.start()
        app[HASHING] = started
        yield
        await started.close()

    return password_hashing


async def _registrar(app: web.Application) -> AsyncIterator[None]:
    """Registration's service layer on our engine and hashing worker (apps read afresh each time:
    an operator's change shows at once)."""
    async with contextlib.AsyncExitStack() as stack:
        app[REGISTRAR] = await stack.enter_async_context(
            open_registrar(app[SETTINGS], app[ENGINE], hashing=app[HASHING])
        )
        yield


def _operator_sessions(limits: SignInLimits, clock: Callable[[], datetime]) -> CleanupStep:
    async def operator_sessions(app: web.Application) -> AsyncIterator[None]:
        app[OPERATOR_SESSIONS] = OperatorSessions(app[SESSIONS], app[HASHING], app[RATE_LIMITER], limits, clock)
        yield

    return operator_sessions


async def _area_services(app: web.Application) -> AsyncIterator[None]:
    """Each page area builds its services from what the steps before made (`build(app)`)."""
    for area in AREAS:
        build = getattr(area, "build", None)
        if build is not None:
            build(app)
    yield
