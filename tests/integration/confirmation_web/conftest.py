"""Fixtures of the confirmation-web tests: the service on a real socket against the session's real
database, and links made directly with the ORM and `issue_confirmation` / `new_password_reset` (no
registration code)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from sqlalchemy import func, select

from userreg.confirmation_web.app import create_app
from userreg.shared.confirmations import issue_confirmation
from userreg.shared.db import App, ConfirmationToken, OutboxEvent, User, UserStatus
from userreg.shared.db.models import PasswordResetToken, SessionToken
from userreg.shared.outbox import OutboxRelay
from userreg.shared.passwords import new_password_reset
from userreg.shared.runtime.tasks import Supervised
from userreg.shared.tokens import hash_token, new_guid, new_token

LINK_PATH = re.compile(r"^https?://[^/]+(?P<path>/(?P<app_id>[^/]+)/(?:confirm|reset-password)/(?P<token>[^/]+))$")
# The password of every user a reset link is made for, until a reset changes it.
OLD_PASSWORD = "old password 1"
# argon2id at its cheapest: the tests check which password a hash is of, not its cost.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass(frozen=True)
class MadeLink:
    app: App
    user_id: str
    email: str
    token: str
    path: str  # /{appId}/confirm/{token}, to open on the test server
    url: str  # the public link, as an email would carry it


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    """confirmation-web on a free local port. Its outbox relay is off: most tests look at pages
    and rows, and a relay per test means an AMQP connection and a topology declaration per test.
    Tests of published events add the `relay` fixture (or start the full app themselves)."""
    test_server = TestServer(create_app(settings, run_outbox_relay=False), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


@pytest.fixture
async def relay(engine, settings, topology) -> AsyncIterator[None]:
    """The shared outbox relay, publishing what the service wrote to the session's exchange."""
    relay = OutboxRelay(engine, settings.amqp_dsn, topology, poll_seconds=settings.outbox_poll_seconds)
    async with Supervised("outbox-relay", relay.run, stop_seconds=5):
        yield


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client (no script, no cookies kept): what a mail scanner is."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


@pytest.fixture
def url(server: TestServer):
    def make(path: str) -> str:
        return str(server.make_url(path))

    return make


async def _link_owner(
    session, app: App, status: UserStatus, properties: dict | None, user_id: str | None, password_hash: str
) -> tuple[App, User, str]:
    """(the app as stored, the user a link is made for, its email): `user_id`'s user, or a new one."""
    db_app = await session.get(App, app.app_id)
    assert db_app is not None
    user = None if user_id is None else await session.get(User, user_id)
    if user is not None:
        return db_app, user, user.properties["email"]
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    user = User(
        object_id=new_guid(),
        app_id=app.app_id,
        identity_key=email.lower(),
        properties={"email": email, "name": "Test User", **(properties or {})},
        password_hash=password_hash,
        status=status,
    )
    session.add(user)
    await session.flush()
    return db_app, user, email


def _issued_at(ttl_seconds: int, expired: bool, issued_ago: timedelta | None) -> datetime:
    """When a link is made to have been issued: past its lifetime when `expired`, else `issued_ago`."""
    now = datetime.now(UTC)
    if expired:
        return now - timedelta(seconds=ttl_seconds + 60)
    return now - (issued_ago or timedelta(0))


@pytest.fixture
def make_link(sessions, settings):
    """Create a user of `app` with `status` and a confirmation link; `expired=True` makes a link
    whose lifetime is over, `issued_ago` backdates it (for the resend cool-down)."""

    async def make(
        app: App,
        *,
        status: UserStatus = UserStatus.EMAIL_CONFIRMATION_PENDING,
        expired: bool = False,
        issued_ago: timedelta | None = None,
        properties: dict | None = None,
        user_id: str | None = None,
    ) -> MadeLink:
        async with sessions() as session, session.begin():
            db_app, user, email = await _link_owner(session, app, status, properties, user_id, "not-a-real-hash")
            issued_at = _issued_at(db_app.confirmation_link_ttl, expired, issued_ago)
            confirmation = issue_confirmation(session, db_app, user, settings.public_confirmation_url, issued_at)
        match = LINK_PATH.match(confirmation.url)
        assert match, confirmation.url
        return MadeLink(
            app=db_app,
            user_id=user.object_id,
            email=email,
            token=match["token"],
            path=match["path"],
            url=confirmation.url,
        )

    return make


@pytest.fixture
def tokens_of(sessions):
    async def count(user_id: str) -> int:
        async with sessions() as session:
            return await session.scalar(select(func.count()).where(ConfirmationToken.user_id == user_id))

    return count


@pytest.fixture
def outbox_of(sessions):
    """The routing keys of the outbox rows about a user that are not published yet."""

    async def rows(user_id: str) -> list[str]:
        async with sessions() as session:
            return list(
                await session.scalars(
                    select(OutboxEvent.routing_key).where(OutboxEvent.payload["user"]["objectId"].astext == user_id)
                )
            )

    return rows


@pytest.fixture
def make_reset_link(sessions, settings):
    """A user of `app` (new, or `user_id`) with `status`, the password OLD_PASSWORD and a
    password-reset link made as `restorepassword` makes one (without its event); `expired=True`
    makes a link past its lifetime, `issued_ago` backdates it (for the cool-down)."""

    async def make(
        app: App,
        *,
        status: UserStatus = UserStatus.ENABLED,
        expired: bool = False,
        issued_ago: timedelta | None = None,
        properties: dict | None = None,
        user_id: str | None = None,
    ) -> MadeLink:
        async with sessions() as session, session.begin():
            db_app, user, email = await _link_owner(
                session, app, status, properties, user_id, CHEAP_HASHER.hash(OLD_PASSWORD)
            )
            issued_at = _issued_at(db_app.password_reset_link_ttl, expired, issued_ago)
            row, link = new_password_reset(db_app, user, settings.public_confirmation_url, issued_at)
            session.add(row)
        match = LINK_PATH.match(link.url)
        assert match and "/reset-password/" in link.url, link.url
        return MadeLink(
            app=db_app, user_id=user.object_id, email=email, token=match["token"], path=match["path"], url=link.url
        )

    return make


@pytest.fixture
def make_session(sessions):
    """`await make_session(user_id)`: a login's session row for the user (its token is not needed)."""

    async def make(user_id: str) -> None:
        async with sessions() as session, session.begin():
            user = await session.get(User, user_id)
            session.add(SessionToken(token_hash=hash_token(new_token()), app_id=user.app_id, user_id=user_id))

    return make


@pytest.fixture
def account_of(sessions):
    """`await account_of(user_id)`: (password hash, sessions, reset links) of the user as stored."""

    async def read(user_id: str) -> tuple[str, int, int]:
        async with sessions() as session:
            password_hash = await session.scalar(select(User.password_hash).where(User.object_id == user_id))
            live_sessions = await session.scalar(select(func.count()).where(SessionToken.user_id == user_id))
            reset_links = await session.scalar(select(func.count()).where(PasswordResetToken.user_id == user_id))
        return password_hash, live_sessions, reset_links

    return read


@pytest.fixture
def outbox_payloads_of(sessions):
    """The payloads of the outbox rows about a user that are not published yet, oldest first."""

    async def rows(user_id: str) -> list[dict]:
        async with sessions() as session:
            return list(
                await session.scalars(
                    select(OutboxEvent.payload)
                    .where(OutboxEvent.payload["user"]["objectId"].astext == user_id)
                    .order_by(OutboxEvent.id)
                )
            )

    return rows
