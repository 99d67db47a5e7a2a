"""Fixtures of the registration service's tests: the real service on a test server, and a small
client that speaks its URL scheme."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.registration.client import Api
from userreg.registration.app import create_app
from userreg.shared.settings import Settings


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
