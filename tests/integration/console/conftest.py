"""Fixtures of the console tests: the console on a real socket (`create_app` on an aiohttp
TestServer) against the session's real database, an operator made as `userreg operator create`
makes one (shared.operators + shared.hashing), and clients signed in or not."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.integration.console.support import ConsoleClient
from userreg.console.app import create_app
from userreg.console.service.operators import SignInLimits
from userreg.shared.hashing import Argon2Parameters
from userreg.shared.operators import create_operator
from userreg.shared.ratelimits import RateLimit

# Every test signs in from 127.0.0.1 against one database: the per-address limit must not be what
# a test meets by accident (the rate-limit tests use limits and addresses of their own).
ROOMY_LIMITS = SignInLimits(per_address=RateLimit(100_000, 900), per_email=RateLimit(1000, 900))
PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class MadeOperator:
    operator_id: str
    email: str
    password: str


@pytest.fixture
async def console(settings) -> AsyncIterator[TestServer]:
    """The console on a free local port."""
    server = TestServer(create_app(settings, sign_in_limits=ROOMY_LIMITS), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def start_console(settings) -> AsyncIterator:
    """`await start_console(settings_update={...}, **create_app_keywords)`: the base URL of another
    console of the test's own, with some settings changed or dependencies replaced."""
    servers: list[TestServer] = []

    async def start(settings_update: dict | None = None, **keywords) -> str:
        keywords.setdefault("sign_in_limits", ROOMY_LIMITS)
        server = TestServer(create_app(settings.model_copy(update=settings_update or {}), **keywords), host="127.0.0.1")
        servers.append(server)
        await server.start_server()
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in reversed(servers):
        await server.close()


@pytest.fixture
def console_url(console: TestServer) -> str:
    """The console's base URL (no trailing slash)."""
    return str(console.make_url("")).rstrip("/")


@pytest.fixture
def make_operator(sessions, settings):
    """`await make_operator()`: a new operator (unique email, PASSWORD unless given)."""

    async def make(email: str | None = None, password: str = PASSWORD) -> MadeOperator:
        email = email or f"operator-{uuid.uuid4().hex[:10]}@example.com"
        password_hash = Argon2Parameters.from_settings(settings).hasher().hash(password)
        async with sessions() as session, session.begin():
            made = await create_operator(session, email, password_hash)
        return MadeOperator(made.operator_id, made.email, password)

    return make


@pytest.fixture
async def operator(make_operator) -> MadeOperator:
    return await make_operator()


@pytest.fixture
async def anonymous(console_url) -> AsyncIterator[ConsoleClient]:
    """A client of the console that is not signed in (it keeps cookies)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        yield ConsoleClient(http, console_url)


@pytest.fixture
async def http_client_for(operator) -> AsyncIterator:
    """`await http_client_for(base_url)`: a client signed in as `operator` to the console at
    `base_url` (for a test that starts a console of its own)."""
    async with contextlib.AsyncExitStack() as stack:

        async def sign_in(base_url: str) -> ConsoleClient:
            http = await stack.enter_async_context(aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)))
            signed_in = ConsoleClient(http, base_url)
            page = await signed_in.sign_in(operator.email, operator.password)
            assert page.status == 200, page.text
            return signed_in

        yield sign_in


@pytest.fixture
async def client(console_url, http_client_for) -> ConsoleClient:
    """A client signed in as `operator`; `client.post(path, fields)` adds the CSRF token."""
    return await http_client_for(console_url)
