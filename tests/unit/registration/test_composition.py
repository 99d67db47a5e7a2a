"""The composition root: `create_app` wires the dependencies it is given into the service it
builds, so a test can compose the service with fakes. No PostgreSQL, RabbitMQ, hashing worker or
webhook server: the settings point where nothing answers, and nothing here reaches them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from userreg.registration import errors
from userreg.registration.app import create_app
from userreg.registration.keys import REGISTRAR, RELAY
from userreg.registration.rules.schema import AppRules, Column
from userreg.registration.service import Tenant
from userreg.shared.db.models import App, ColumnType
from userreg.shared.settings import Settings

APP_ID = "0A1B2C3D-0000-4000-8000-00000000C0DE"
REST_KEY = "rest-key-of-the-composed-app"
WEBHOOK_URL = "https://hooks.test.invalid/before-register"
# Port 9 (discard) answers nothing: a connection the composition opened would fail the test.
NOWHERE = Settings(
    _env_file=None,
    database_url="postgresql+asyncpg://nobody@127.0.0.1:9/nowhere",
    amqp_url="amqp://nobody:nothing@127.0.0.1:9/",
)


def _tenant() -> Tenant:
    app = App(
        app_id=APP_ID,
        name="Composed",
        rest_api_key=REST_KEY,
        server_api_key="server-key-of-it",
        registration_enabled=True,
        email_confirmation_required=False,
        dynamic_schema=True,
        identity_property="email",
        before_register_webhook_url=WEBHOOK_URL,
        client_rate_limit="off",
        max_dynamic_columns=100,
    )
    columns = [
        Column("email", ColumnType.STRING, max_length=500, is_identity=True, built_in=True),
        Column("password", ColumnType.STRING, max_length=1024, built_in=True),
    ]
    return Tenant(app, AppRules.of(app, columns))


class FakeHashing:
    """Hashes every password to one fixed hash, at once; records what it was asked."""

    HASH = "$argon2id$v=19$m=8,t=1,p=1$ZmFrZXNhbHQ$ZmFrZWhhc2g"

    def __init__(self) -> None:
        self.hashed: list[str] = []
        self.verified: list[tuple[str | None, str]] = []

    async def hash(self, password: str) -> str:
        self.hashed.append(password)
        return self.HASH

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, bool]:
        self.verified.append((password_hash, password))
        return password_hash == self.HASH, False


class RefusingWebhook:
    """Refuses every user (3014), recording what it was sent."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str, dict]] = []

    async def check(self, url: str, app_id: str, user: dict) -> None:
        self.asked.append((url, app_id, user))
        raise errors.ExternalRegistrationFailed("External registration failed with an error: a fake's no")


class FixedTenants:
    """A tenant cache that always listens and never connects: it serves the tenants it was given."""

    listening = True
    generation = 0

    def __init__(self, *tenants: Tenant) -> None:
        self._tenants = {tenant.app.app_id: tenant for tenant in tenants}

    async def get(self, app_id: str) -> Tenant | None:
        return self._tenants.get(app_id)

    def put(self, app_id: str, tenant: Tenant, generation: int) -> None:
        self._tenants[app_id] = tenant

    async def run(self) -> None:
        await asyncio.Event().wait()


class IdleRelay:
    """An outbox relay that relays nothing and says it is connected."""

    connected = True

    async def run(self) -> None:
        await asyncio.Event().wait()


@pytest.fixture
async def composed() -> AsyncIterator[tuple[web.Application, FakeHashing, RefusingWebhook]]:
    """The service composed with fakes and started (its `cleanup_ctx` run) without a server."""
    hashing, webhook = FakeHashing(), RefusingWebhook()
    app = create_app(
        NOWHERE, hashing=hashing, webhook=webhook, tenant_cache=FixedTenants(_tenant()), outbox_relay=IdleRelay()
    )
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        yield app, hashing, webhook
    finally:
        await runner.cleanup()


async def test_the_registrar_is_built_with_the_fakes(composed):
    app, hashing, webhook = composed
    registrar = app[REGISTRAR]
    assert registrar._hashing is hashing and registrar._webhook is webhook
    assert app[RELAY].ready  # the supervised relay is the fake, and /ready reads it


async def test_a_registration_goes_through_the_fake_webhook(composed):
    app, hashing, webhook = composed
    registrar = app[REGISTRAR]
    tenant = await registrar.authenticate(APP_ID.lower(), REST_KEY, registering=True)  # from the cache
    with pytest.raises(errors.ExternalRegistrationFailed, match="a fake's no"):
        await registrar.create_user(tenant, [("email", "ann@example.com"), ("password", "pw")], locale="de")
    assert webhook.asked == [(WEBHOOK_URL, APP_ID, {"email": "ann@example.com", "blUserLocale": "de"})]
    assert hashing.hashed == []  # refused before any hashing or writing


async def test_a_login_is_verified_by_the_fake_hashing(composed):
    app, hashing, _ = composed
    registrar = app[REGISTRAR]
    tenant = await registrar.authenticate(APP_ID, REST_KEY)
    # A login no user can have is not looked up; it is verified against the dummy hash (None here).
    with pytest.raises(errors.InvalidLogin):
        await registrar.log_in(tenant, "nobody\x00", "pw")
    assert hashing.verified == [(None, "pw")]


async def test_a_preflight_and_app_info_need_nothing_but_the_cached_app():
    """With the app in the tenant cache, a preflight (and `GET /info`) is answered without the
    database: the settings point where nothing answers, and any query would answer 503."""
    listed = _tenant()
    listed.app.allowed_origins = "https://app.example.com"
    listed = Tenant(listed.app, AppRules.of(listed.app, listed.rules.columns.values()))
    app = create_app(
        NOWHERE,
        hashing=FakeHashing(),
        webhook=RefusingWebhook(),
        tenant_cache=FixedTenants(listed),
        outbox_relay=IdleRelay(),
    )
    async with TestClient(TestServer(app)) as client:
        for origin, allowed in (("https://app.example.com", "https://app.example.com"), ("https://evil.test", None)):
            async with client.options(
                f"/{APP_ID}/{REST_KEY}/users/register",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                },
            ) as response:
                assert response.status == 204
                assert response.headers.get("Access-Control-Allow-Origin") == allowed
        async with client.get(f"/{APP_ID}/{REST_KEY}/info", headers={"Origin": "https://app.example.com"}) as response:
            assert response.status == 200 and (await response.json())["appName"] == "Composed"
            assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
        # An appId that is not a GUID is not looked up at all: answered as for any origin.
        async with client.options(
            "/not-an-app/key/users/login",
            headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "POST"},
        ) as response:
            assert response.status == 204 and response.headers["Access-Control-Allow-Origin"] == "*"
