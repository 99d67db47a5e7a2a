"""The composition root of confirmation-web: `create_app(settings)` builds the application, its routes
and, in `cleanup_ctx` steps run in order when it starts (and undone in reverse when it stops), the
engine, the read pool, the repository, the password-hashing workers, the services (confirmations,
password resets), the page renderer and the outbox relay. Nothing connects until the app starts;
fakes of the outward dependencies can be passed in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from importlib import resources

import asyncpg
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.confirmation_web import views
from userreg.confirmation_web.email_changes import EmailChanges
from userreg.confirmation_web.keys import (
    CONFIRMATIONS,
    EMAIL_CHANGES,
    ENGINE,
    HASHING,
    PAGES,
    PASSWORD_RESETS,
    PUBLIC_ORIGIN,
    READ_POOL,
    RELAY,
    REPOSITORY,
    SETTINGS,
)
from userreg.confirmation_web.middleware import baseline_headers, error_pages
from userreg.confirmation_web.pages import PageRenderer
from userreg.confirmation_web.password_resets import PasswordResets
from userreg.confirmation_web.repository import Repository, open_read_pool
from userreg.confirmation_web.rules.origin import origin_of
from userreg.confirmation_web.service import Confirmations
from userreg.shared.clock import utcnow
from userreg.shared.db import create_engine, create_sessionmaker, session_dsn
from userreg.shared.hashing import Argon2Parameters, PasswordHashing
from userreg.shared.messaging import Topology
from userreg.shared.outbox import CONFIRMATION_WEB_PRODUCER, OutboxRelay
from userreg.shared.runtime.access import access_log
from userreg.shared.runtime.tasks import Supervised, supervised_in
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore

STATIC = resources.files("userreg.confirmation_web").joinpath("static")
# The forms post a token, and the reset form two passwords of at most 1024 characters: up to 24 KiB
# percent-encoded (4 UTF-8 bytes a character, 3 characters a byte). A longer password still reaches
# the form's "too long" message; a body over this limit is refused (413) before it is read.
MAX_BODY_BYTES = 64 * 1024
# Password resets are rare: one hashing worker unless HASH_WORKERS says how many (0, its default,
# means one per core for registration, which hashes at every login; here it means one).
DEFAULT_HASH_WORKERS = 1

CleanupStep = Callable[[web.Application], AsyncIterator[None]]


def create_app(
    settings: Settings,
    *,
    run_outbox_relay: bool = True,
    engine: AsyncEngine | None = None,
    read_pool: asyncpg.Pool | None = None,
    templates: TemplateStore | None = None,
    clock: Callable[[], datetime] | None = None,
    hashing: PasswordHashing | None = None,
) -> web.Application:
    """The aiohttp application of confirmation-web. The outbox relay that publishes the
    `user.confirmed`, `user.confirmation_requested`, `user.password_reset_requested` and
    `user.password_changed` events runs in the same process unless `run_outbox_relay` is off (for a
    test that wants to look at the outbox rows themselves).

    The other keywords replace an outward dependency (None: the real one, from the settings): the
    SQLAlchemy `engine` and the asyncpg `read_pool` (their caller closes what it passes in), the
    page `templates` store, the `clock` the services read the time from, and the password
    `hashing` (its caller starts and closes it)."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[access_log, error_pages])
    app[SETTINGS] = settings
    app[PUBLIC_ORIGIN] = origin_of(settings.public_confirmation_url)
    app.cleanup_ctx.extend(
        (
            _engine(engine),
            _read_pool(read_pool),
            _repository,
            _password_hashing(hashing),
            _services(clock or utcnow),
            _page_renderer(templates),
        )
    )
    if run_outbox_relay:
        app.cleanup_ctx.append(supervised_in(RELAY, _outbox_relay))
    app.on_response_prepare.append(baseline_headers)
    _add_routes(app)
    return app


def _add_routes(app: web.Application) -> None:
    app.router.add_get("/health", views.health)
    app.router.add_get("/ready", views.ready)
    app.router.add_get("/metrics", views.metrics)
    app.router.add_static("/static", str(STATIC), name="static", append_version=False)
    app.router.add_get("/{app_id}/confirm/{token}", views.open_link, name="link")
    app.router.add_post("/{app_id}/confirm", views.confirm, name="confirm")
    # The address bar shows this path after the POST; opening it again is a link without token.
    app.router.add_get("/{app_id}/confirm", views.link_without_token, name="confirm-page")
    app.router.add_post("/{app_id}/confirm/resend", views.resend, name="resend")
    app.router.add_get("/{app_id}/reset-password/{token}", views.open_reset_link, name="reset-link")
    app.router.add_post("/{app_id}/reset-password", views.reset_password, name="reset-password")
    # As for confirming: the address bar shows this path after the POST.
    app.router.add_get("/{app_id}/reset-password", views.reset_link_without_token, name="reset-page")
    app.router.add_post("/{app_id}/reset-password/resend", views.resend_reset_link, name="reset-resend")
    app.router.add_get("/{app_id}/change-email/{token}", views.open_email_change, name="email-change-link")
    app.router.add_post("/{app_id}/change-email", views.change_email, name="change-email")
    app.router.add_get("/{app_id}/change-email", views.email_change_without_token, name="email-change-page")


def _engine(given: AsyncEngine | None) -> CleanupStep:
    """The SQLAlchemy engine of the sessions (the writes, the page overrides) and of the outbox
    relay: `given`, or one of the settings', disposed when the app stops."""

    async def engine(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[ENGINE] = given
            yield
            return
        created = create_engine(app[SETTINGS], application_name=CONFIRMATION_WEB_PRODUCER)
        app[ENGINE] = created
        yield
        await created.dispose()

    return engine


def _read_pool(given: asyncpg.Pool | None) -> CleanupStep:
    """The read-only asyncpg pool of the link lookups (the hot path): `given`, or one of the
    settings', closed when the app stops."""

    async def read_pool(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[READ_POOL] = given
            yield
            return
        opened = await open_read_pool(app[SETTINGS])
        app[READ_POOL] = opened
        yield
        await opened.close()

    return read_pool


async def _repository(app: web.Application) -> AsyncIterator[None]:
    """The repository over the engine's sessions and the read pool."""
    app[REPOSITORY] = Repository(create_sessionmaker(app[ENGINE]), app[READ_POOL])
    yield


def _password_hashing(given: PasswordHashing | None) -> CleanupStep:
    """The argon2id workers that hash a reset's new password off the event loop: `given`, or a
    pool of the settings' parameters (`DEFAULT_HASH_WORKERS` unless HASH_WORKERS is set), started
    before the first request and stopped when the app stops."""

    async def password_hashing(app: web.Application) -> AsyncIterator[None]:
        if given is not None:
            app[HASHING] = given
            yield
            return
        settings = app[SETTINGS]
        started = PasswordHashing(
            Argon2Parameters.from_settings(settings),
            settings.hash_workers or DEFAULT_HASH_WORKERS,
            queue_seconds=settings.hash_queue_seconds,
        )
        await started.start()
        app[HASHING] = started
        yield
        await started.close()

    return password_hashing


def _services(clock: Callable[[], datetime]) -> CleanupStep:
    """The services: the actions a visitor takes on a confirmation link and on a reset link."""

    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        app[CONFIRMATIONS] = Confirmations(
            app[REPOSITORY], settings.public_confirmation_url, settings.resend_cooldown_seconds, clock=clock
        )
        app[PASSWORD_RESETS] = PasswordResets(
            app[REPOSITORY],
            app[HASHING],
            settings.public_confirmation_url,
            settings.resend_cooldown_seconds,
            clock=clock,
        )
        app[EMAIL_CHANGES] = EmailChanges(app[REPOSITORY], clock=clock)
        yield

    return services


def _page_renderer(given: TemplateStore | None) -> CleanupStep:
    """The page renderer, over `given` template store or one with the settings' render limits."""

    async def page_renderer(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        store = given if given is not None else TemplateStore.from_settings(settings)
        app[PAGES] = PageRenderer(store, app[REPOSITORY], settings.public_confirmation_url)
        yield

    return page_renderer


def _outbox_relay(app: web.Application) -> Supervised:
    """Publishes the events of confirmations and password resets; `/ready` reads its state."""
    settings = app[SETTINGS]
    relay = OutboxRelay(
        app[ENGINE],
        settings.amqp_dsn,
        Topology.from_settings(settings),
        batch_size=settings.outbox_batch_size,
        poll_seconds=settings.outbox_poll_seconds,
        listen_dsn=session_dsn(settings),
        producer=CONFIRMATION_WEB_PRODUCER,
    )
    return Supervised("outbox-relay", relay.run, ready=lambda: relay.connected)
