"""Every HTTP service's composition root puts the shared access log first: each answer carries the
request id (the client's sane one, else a new one) and each request is one line, with its path
written without tokens, keys or query string. (The mailer's: tests/integration/mailer/test_logs.py.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web

from tests.support.logs import json_lines, serve
from userreg.confirmation_web.app import create_app as confirmation_web
from userreg.console.app import create_app as console
from userreg.inbox import Inbox
from userreg.registration.app import create_app as registration
from userreg.shared.runtime.access import REQUEST_ID_HEADER

TOKEN = "Zk3v9QpL0wXa7bC2dE5fG8hJ1kM4nP6rS-T_uVyWz0"


@pytest.fixture
async def start() -> AsyncIterator[Callable]:
    """`base_url = await start(app)`: the app served as its process serves it; closed after the test."""
    servers = []

    async def run(app: web.Application) -> str:
        server = await serve(app)
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield run
    for server in reversed(servers):
        await server.close()


async def get(url: str, request_id: str | None = None) -> tuple[int, str]:
    headers = {REQUEST_ID_HEADER: request_id} if request_id is not None else {}
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers[REQUEST_ID_HEADER]


async def test_registration(start, settings, make_app):
    app = await make_app()
    base = await start(registration(settings))
    request_id = f"reg-{uuid.uuid4().hex}"
    with json_lines() as lines:
        status, answered = await get(
            f"{base}/{app.app_id}/{app.rest_api_key}/users/isvalidusertoken/{TOKEN}?x={TOKEN}", request_id
        )
        assert (status, answered) == (200, request_id)
        status, answered = await get(f"{base}/openapi.json", "bad id!")
        assert status == 200 and answered != "bad id!" and len(answered) == 32
    api_call, document = lines.access()
    assert (api_call["request_id"], api_call["app_id"], api_call["status"]) == (request_id, app.app_id, 200)
    assert api_call["path"] == f"/{app.app_id}/[apiKey]/users/isvalidusertoken/[token]"
    assert (document["request_id"], document["path"]) == (answered, "/openapi.json")
    assert TOKEN not in lines.text and app.rest_api_key not in lines.text


async def test_confirmation_web(start, settings, make_app):
    app = await make_app(email_confirmation_required=True)
    base = await start(confirmation_web(settings, run_outbox_relay=False))
    with json_lines() as lines:
        status, answered = await get(f"{base}/{app.app_id}/confirm/{TOKEN}", "cw-1")
        assert (status, answered) == (404, "cw-1")  # no such link: the "failed" page
        status, _ = await get(f"{base}/static/does-not-exist.css")
    link, static = lines.access()
    assert (link["path"], link["status"], link["request_id"], link["app_id"]) == (
        f"/{app.app_id}/confirm/[token]",
        404,
        "cw-1",
        app.app_id,
    )
    assert static["path"] == "/static/does-not-exist.css"
    assert TOKEN not in lines.text


async def test_console(start, settings):
    base = await start(console(settings))
    with json_lines() as lines:
        status, answered = await get(f"{base}/sign-in?next=/apps", "console-1")
        assert (status, answered) == (200, "console-1")
        status, _ = await get(f"{base}/apps")
        assert status in (302, 303)  # not signed in: to the sign-in page
    sign_in, apps = lines.access()
    assert (sign_in["path"], sign_in["status"], sign_in["request_id"]) == ("/sign-in", 200, "console-1")
    assert (apps["path"], apps["status"]) == ("/apps", status)


async def test_inbox():
    async with Inbox(smtp_port=0, http_port=0) as inbox:
        with json_lines() as lines:
            status, answered = await get(f"http://127.0.0.1:{inbox.http_port}/api/messages", "inbox-1")
            assert (status, answered) == (200, "inbox-1")
    [line] = lines.access()
    assert (line["path"], line["status"], line["request_id"]) == ("/api/messages", 200, "inbox-1")
