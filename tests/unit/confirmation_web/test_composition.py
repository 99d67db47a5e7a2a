"""The composition root: `create_app` builds engine, read pool, repository, password hashing,
services and page renderer when the app starts, from fakes of its outward dependencies where a test
passes them. Nothing here needs PostgreSQL or RabbitMQ: the read pool is a fake answering the
lookups' SQL, the engine a fake that is never connected (no request in these tests writes), the
hashing a fake that hashes nothing, and the outbox relay is off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from tests.integration.confirmation_web.support import data_page
from userreg.confirmation_web.app import create_app
from userreg.confirmation_web.keys import (
    CONFIRMATIONS,
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
from userreg.confirmation_web.pages import PageRenderer
from userreg.confirmation_web.password_resets import PasswordResets
from userreg.confirmation_web.repository import APP_NAME_SQL, LOOKUP_SQL, RESET_LOOKUP_SQL, Repository
from userreg.confirmation_web.service import Confirmations
from userreg.shared.hashing import HashingBusy
from userreg.shared.settings import Settings
from userreg.shared.templates import TemplateStore
from userreg.shared.tokens import hash_token, new_token

APP_ID = "0A1B2C3D-0000-4000-8000-00000000C0DE"
TOKEN = new_token()
EXPIRES_AT = datetime(2030, 1, 1, tzinfo=UTC)
BEFORE_EXPIRY = datetime(2029, 12, 31, tzinfo=UTC)
AFTER_EXPIRY = datetime(2030, 1, 2, tzinfo=UTC)
# Nothing listens there: a composition that connected anyway would fail, not pass by accident.
NOWHERE = "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere"


class FakeReadPool:
    """Answers the repository's lookups from memory, and records them."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, tuple]] = []
        self.closed = False
        self.away = False  # True: every query fails as a database that is down does

    def _ask(self, sql: str, args: tuple) -> None:
        self.queries.append((sql, args))
        if self.away:
            raise ConnectionRefusedError("the database is away")

    async def fetchrow(self, sql: str, *args: object) -> dict | None:
        self._ask(sql, args)
        if sql in (LOOKUP_SQL, RESET_LOOKUP_SQL) and args[:2] == (hash_token(TOKEN), APP_ID):
            return {
                "app_id": APP_ID,
                "name": "Composed App",
                "identity_property": "email",
                "confirm_on_get": False,
                "email_confirmation_required": True,
                "object_id": "USER-1",
                "status": "EMAIL_CONFIRMATION_PENDING",
                "properties": {"email": "ada@example.com"},
                "expires_at": EXPIRES_AT,
                "has_page_overrides": False,
            }
        if sql == APP_NAME_SQL and args == (APP_ID,):
            return {"app_id": APP_ID, "name": "Composed App"}
        return None

    async def fetchval(self, sql: str, *args: object) -> object:
        self._ask(sql, args)
        return 1

    async def close(self) -> None:
        self.closed = True


class FakeEngine:
    """Stands in for the SQLAlchemy engine: sessions are made over it, none is opened here."""

    disposed = False

    async def dispose(self) -> None:
        self.disposed = True


class FakeHashing:
    """Stands in for the argon2id workers: counts what it is asked to hash, and can be full."""

    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.busy = False

    async def hash(self, password: str) -> str:
        if self.busy:
            raise HashingBusy(2.5)
        self.hashed.append(password)
        return "$argon2id$fake"


class RecordingStore(TemplateStore):
    """The real template store (the shipped pages), counting the pages it renders."""

    rendered = 0

    def render_page(self, source, context):
        self.rendered += 1
        return super().render_page(source, context)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def settings() -> Settings:
    """Settings of no real server (this module needs none); overrides the session's fixture."""
    return Settings(
        database_url=SecretStr(NOWHERE),
        amqp_url=SecretStr("amqp://guest:guest@127.0.0.1:9/"),
        public_confirmation_url="https://confirm.example.com/users",
    )


@pytest.fixture
def fakes():
    return (
        FakeEngine(),
        FakeReadPool(),
        RecordingStore(render_seconds=1.0, output_bytes=64 * 1024),
        Clock(BEFORE_EXPIRY),
    )


@pytest.fixture
def hashing() -> FakeHashing:
    return FakeHashing()


@pytest.fixture
async def server(settings, fakes, hashing) -> AsyncIterator[TestServer]:
    engine, pool, store, clock = fakes
    app = create_app(
        settings, run_outbox_relay=False, engine=engine, read_pool=pool, templates=store, clock=clock, hashing=hashing
    )
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


async def fetch(http, url, method="GET", **kwargs):
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, response.headers, await response.text()


def test_nothing_is_built_before_the_app_starts(settings, fakes, hashing):
    engine, pool, store, clock = fakes
    app = create_app(
        settings, run_outbox_relay=False, engine=engine, read_pool=pool, templates=store, clock=clock, hashing=hashing
    )
    assert app[SETTINGS] is settings
    assert app[PUBLIC_ORIGIN] == "https://confirm.example.com"
    assert all(
        key not in app for key in (ENGINE, READ_POOL, REPOSITORY, HASHING, CONFIRMATIONS, PASSWORD_RESETS, PAGES, RELAY)
    )
    # engine, read pool, repository, password hashing, services, page renderer; the outbox relay
    # only when asked for.
    assert len(app.cleanup_ctx) == 6
    assert len(create_app(settings).cleanup_ctx) == 7


async def test_the_started_app_holds_the_fakes_and_leaves_them_open(settings, fakes, hashing):
    engine, pool, store, clock = fakes
    app = create_app(
        settings, run_outbox_relay=False, engine=engine, read_pool=pool, templates=store, clock=clock, hashing=hashing
    )
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        assert app[ENGINE] is engine and app[READ_POOL] is pool and app[HASHING] is hashing
        assert isinstance(app[REPOSITORY], Repository)
        assert isinstance(app[CONFIRMATIONS], Confirmations)
        assert isinstance(app[PASSWORD_RESETS], PasswordResets)
        assert isinstance(app[PAGES], PageRenderer)
        assert RELAY not in app
    finally:
        await test_server.close()
    # What the caller passed in, the caller closes.
    assert not engine.disposed and not pool.closed


async def test_a_link_opens_through_view_service_repository_and_renderer(server, fakes, http):
    _, pool, store, clock = fakes
    status, headers, html = await fetch(http, str(server.make_url(f"/{APP_ID.lower()}/confirm/{TOKEN}")))
    assert (status, data_page(html)) == (200, "confirmation-pending")
    assert "Composed App" in html and f'value="{TOKEN}"' in html
    # Links and forms live under the public URL's path, not the request's.
    assert f'action="/users/{APP_ID}/confirm"' in html
    assert headers["Cache-Control"] == "no-store" and "nonce-" in headers["Content-Security-Policy"]
    # One lookup, on the injected pool, with the appId normalised; rendered by the injected store.
    assert [sql for sql, _ in pool.queries] == [LOOKUP_SQL]
    assert pool.queries[0][1][:2] == (hash_token(TOKEN), APP_ID)
    assert store.rendered == 1
    # The service reads the time from the injected clock.
    clock.now = AFTER_EXPIRY
    status, _, html = await fetch(http, str(server.make_url(f"/{APP_ID}/confirm/{TOKEN}")))
    assert (status, data_page(html)) == (410, "confirmation-expired")


async def test_failed_pages_come_from_the_service_through_the_renderer(server, fakes, http):
    # Of an app the read pool does not know: a known app's failed page looks for the app's override
    # in a session, which these fakes do not open.
    _, pool, store, _ = fakes
    status, _, html = await fetch(http, str(server.make_url("/other-app/confirm/not-a-token")))
    assert (status, data_page(html)) == (404, "confirmation-failed")
    status, _, html = await fetch(
        http,
        str(server.make_url("/other-app/confirm")),
        method="POST",
        data={"token": TOKEN},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert (status, data_page(html)) == (403, "confirmation-failed")
    status, _, html = await fetch(http, str(server.make_url("/no/such/path")))
    assert (status, data_page(html)) == (404, "confirmation-failed")
    assert pool.queries == [(APP_NAME_SQL, ("OTHER-APP",))] * 2
    assert store.rendered == 3


async def test_ready_asks_the_read_pool_and_needs_no_broker_without_a_relay(server, fakes, http):
    _, pool, _, _ = fakes
    status, _, body = await fetch(http, str(server.make_url("/ready")))
    assert status == 200
    assert json.loads(body) == {"status": "ready", "database": "ok", "broker": "ok"}
    assert [sql for sql, _ in pool.queries] == ["SELECT 1"]


async def test_a_database_outage_reaches_the_error_page_middleware(server, fakes, http):
    _, pool, _, _ = fakes
    pool.away = True
    status, headers, html = await fetch(http, str(server.make_url(f"/{APP_ID}/confirm/{TOKEN}")))
    assert (status, data_page(html)) == (503, "error")
    assert headers["Retry-After"] == "5" and "Traceback" not in html
    status, _, _ = await fetch(http, str(server.make_url("/ready")))
    assert status == 503


async def test_a_reset_link_opens_through_the_reset_service(server, fakes, hashing, http):
    _, pool, _store, clock = fakes
    status, headers, html = await fetch(http, str(server.make_url(f"/{APP_ID}/reset-password/{TOKEN}")))
    assert (status, data_page(html)) == (200, "password-reset")
    assert f'action="/users/{APP_ID}/reset-password"' in html and f'value="{TOKEN}"' in html
    assert headers["Cache-Control"] == "no-store" and "nonce-" in headers["Content-Security-Policy"]
    assert [sql for sql, _ in pool.queries] == [RESET_LOOKUP_SQL]
    clock.now = AFTER_EXPIRY
    status, _, html = await fetch(http, str(server.make_url(f"/{APP_ID}/reset-password/{TOKEN}")))
    assert (status, data_page(html)) == (410, "password-reset-expired")
    assert hashing.hashed == []


async def test_a_refused_password_or_a_full_hashing_queue_shows_the_form_again(server, fakes, hashing, http):
    """Neither reaches the database's write side: the fake engine is never connected."""
    url = str(server.make_url(f"/{APP_ID}/reset-password"))
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    status, _, html = await fetch(
        http, url, method="POST", headers=same_origin, data={"token": TOKEN, "password": "one", "repeat": "two"}
    )
    assert (status, data_page(html)) == (400, "password-reset")
    assert "did not match" in html and hashing.hashed == []
    hashing.busy = True
    status, headers, html = await fetch(
        http, url, method="POST", headers=same_origin, data={"token": TOKEN, "password": "same", "repeat": "same"}
    )
    assert (status, data_page(html)) == (503, "password-reset")
    assert headers["Retry-After"] == "3" and "try again in 3 seconds" in html
    assert f'value="{TOKEN}"' in html  # the link still works: the form posts it again
