"""The composition root: `create_app` builds the console from its settings and fakes; the routes of
every page area are there, and what needs no database works without one (the public pages, the
redirect of a signed-out request, the refusal of a cross-site POST, static files, headers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from userreg.console.app import create_app
from userreg.console.views import AREAS
from userreg.shared.settings import Settings


class FakeHashing:
    """Never used by these requests; the composition root only keeps it."""

    async def verify(self, password_hash, password):  # pragma: no cover - not reached
        raise AssertionError("no password is checked here")


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    settings = Settings(
        database_url=SecretStr("postgresql+asyncpg://nobody@127.0.0.1:9/unreachable"),
        amqp_url=SecretStr("amqp://guest:guest@127.0.0.1:9/"),
    )
    test_server = TestServer(create_app(settings, hashing=FakeHashing()), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


async def fetch(server: TestServer, method: str, path: str, **kwargs) -> tuple[int, dict, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, server.make_url(path), allow_redirects=False, **kwargs) as response,
    ):
        return response.status, dict(response.headers), await response.text()


def test_every_area_has_routes():
    for area in AREAS:
        assert callable(area.add_routes)
    app = create_app(Settings())
    paths = {route.resource.canonical for route in app.router.routes()}
    assert {
        "/sign-in",
        "/sign-out",
        "/apps",
        "/apps/{app_id}/registration",
        "/apps/{app_id}/keys",
        "/apps/{app_id}/delete",
        "/system",
        "/audit",
        "/health",
        "/ready",
    } <= paths


async def test_the_sign_in_page_needs_no_session(server):
    status, headers, text = await fetch(server, "GET", "/sign-in")
    assert status == 200 and 'data-page="sign-in"' in text
    assert '<label for="email">Email</label>' in text and '<label for="password">Password</label>' in text
    assert "nonce-" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"


async def test_a_page_without_a_session_redirects_to_sign_in(server):
    status, headers, _ = await fetch(server, "GET", "/apps/X/registration?a=1")
    location = urlsplit(headers["Location"])
    assert status == 303 and location.path == "/sign-in"
    assert parse_qs(location.query) == {"next": ["/apps/X/registration?a=1"]}


async def test_a_cross_site_post_is_refused_before_anything_else(server):
    status, _, text = await fetch(
        server, "POST", "/sign-in", data={"email": "a@b.c", "password": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403 and "Form refused" in text


async def test_static_files_are_served_with_a_cache_and_strict_headers(server):
    status, headers, text = await fetch(server, "GET", "/static/console.css")
    assert status == 200 and "prefers-color-scheme: dark" in text
    assert headers["Cache-Control"] == "public, max-age=3600" and headers["X-Content-Type-Options"] == "nosniff"
    assert (await fetch(server, "GET", "/static/nothing.css"))[0] == 404
