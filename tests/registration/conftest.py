"""Fixtures of the registration service's tests: the real service on a test server, and a small
client that speaks its URL scheme."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from userreg.registration.app import create_app
from userreg.shared.db import App
from userreg.shared.settings import Settings


class Api:
    """Calls one app's API through a test client; every call returns (status, decoded body)."""

    def __init__(self, client: TestClient, app: App) -> None:
        self.client = client
        self.app = app

    def path(self, path: str, *, key: str | None = None, app_id: str | None = None) -> str:
        return f"/{app_id or self.app.app_id}/{key or self.app.rest_api_key}{path}"

    async def call(self, method: str, path: str, *, key: str | None = None, app_id: str | None = None,
                   **kwargs: Any) -> tuple[int, Any]:
        async with self.client.request(method, self.path(path, key=key, app_id=app_id), **kwargs) as response:
            raw = await response.read()
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, raw

    async def register(self, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        if body is not None:
            kwargs["json"] = body
        return await self.call("POST", "/users/register", **kwargs)

    async def login(self, login: str, password: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", "/users/login", json={"login": login, "password": password}, **kwargs)

    async def guest(self, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", "/users/register/guest", **kwargs)

    async def set_status(self, object_id: str, status: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("key", self.app.server_api_key)
        return await self.call("PUT", f"/users/{object_id}/status", json={"userStatus": status}, **kwargs)

    async def resend(self, identity: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call("POST", f"/users/resendconfirmation/{identity}", **kwargs)

    async def confirmation_url(self, identity: str, **kwargs: Any) -> tuple[int, Any]:
        kwargs.setdefault("key", self.app.server_api_key)
        return await self.call("POST", f"/users/createEmailConfirmationURL/{identity}", **kwargs)


@pytest.fixture
async def start_service(settings) -> AsyncIterator:
    """`await start_service(**setting_overrides)` → a TestClient of a running registration service."""
    clients: list[TestClient] = []

    async def start(**overrides: Any) -> TestClient:
        # Built anew (not model_copy) so that overrides are validated like environment values.
        client = TestClient(TestServer(create_app(Settings(**{**dict(settings), **overrides}))))
        clients.append(client)  # closed at teardown even when it fails to start
        await client.start_server()
        return client

    yield start
    for client in reversed(clients):
        await client.close()


@pytest.fixture
async def client(start_service) -> TestClient:
    return await start_service()


@pytest.fixture
def api_for(client, make_app):
    """`api = await api_for(**app_settings)`: a new app of the test's own, through the service."""

    async def make(**app_settings: Any) -> Api:
        return Api(client, await make_app(**app_settings))

    return make


@pytest.fixture
def unique_email():
    def make(prefix: str = "user") -> str:
        return f"{prefix}.{uuid.uuid4().hex[:12]}@example.com"

    return make
