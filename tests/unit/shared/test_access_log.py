"""The access log middleware every HTTP service puts first (`shared/runtime/access.py`), on a small
app of its own with route templates like the services' own: the request id round trip, what a line
holds, and that no token, key, identity or query string is written."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.support.logs import JsonLines, json_lines, serve
from userreg.shared.runtime.access import REQUEST_ID_HEADER, access_log, request_id_from

TOKEN = "Zk3v9QpL0wXa7bC2dE5fG8hJ1kM4nP6rS-T_uVyWz0"
APP_ID = "0B8E5C1E-3A4F-4F0E-9D7B-1C2D3E4F5A6B"
KEY = "5F0C2B7E-1D2C-4B3A-8E9F-0A1B2C3D4E5F"


async def _inner_log(request: web.Request) -> web.Response:
    logging.getLogger("test.handler").info("handling")
    return web.Response(text="ok")


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def _fails(request: web.Request) -> web.Response:
    raise RuntimeError("bug")


@pytest.fixture
def lines() -> Iterator[JsonLines]:
    with json_lines() as written:
        yield written


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    (tmp_path / "site.css").write_text("body {}")
    app = web.Application(middlewares=[access_log])
    app.router.add_get("/{appId}/{apiKey}/users/isvalidusertoken/{token}", _inner_log)
    app.router.add_get("/{appId}/{apiKey}/users/restorepassword/{identity}", _inner_log)
    app.router.add_get("/{app_id}/confirm/{token}", _inner_log)
    app.router.add_get("/apps/{app_id}/users/{object_id}", _inner_log)
    app.router.add_get("/health", _inner_log)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/fails", _fails)
    app.router.add_static("/static", tmp_path)
    async with TestClient(await serve(app)) as test_client:
        yield test_client


async def test_a_sane_request_id_comes_back_and_names_every_line_of_the_request(client, lines):
    async with client.get(f"/{APP_ID}/confirm/{TOKEN}", headers={REQUEST_ID_HEADER: "abc.DEF_123-x"}) as response:
        assert response.headers[REQUEST_ID_HEADER] == "abc.DEF_123-x"
    handling, access = lines.all()
    assert handling["message"] == "handling" and handling["request_id"] == "abc.DEF_123-x"
    assert handling["app_id"] == APP_ID
    assert {key: access[key] for key in ("level", "request_id", "app_id", "method", "path", "status")} == {
        "level": "INFO",
        "request_id": "abc.DEF_123-x",
        "app_id": APP_ID,
        "method": "GET",
        "path": f"/{APP_ID}/confirm/[token]",
        "status": 200,
    }
    assert isinstance(access["duration_ms"], float)
    assert access["message"].startswith(f"GET /{APP_ID}/confirm/[token] 200 ")


@pytest.mark.parametrize("given", [None, "", "x" * 65, "has space", "semi;colon", "ünïcode", "a/b"])
async def test_a_missing_or_odd_request_id_is_replaced_by_a_new_one(client, lines, given):
    headers = {} if given is None else {REQUEST_ID_HEADER: given}
    async with client.get("/health", headers=headers) as response:
        answered = response.headers[REQUEST_ID_HEADER]
    assert answered != given and len(answered) == 32 and answered.isalnum()
    assert lines.access()[0]["request_id"] == answered


def test_each_new_request_id_is_new():
    assert request_id_from(None) != request_id_from(None)
    assert request_id_from("x" * 64) == "x" * 64


async def test_no_token_key_identity_or_query_string_is_written(client, lines):
    identity = "ann.smith@example.com"
    for path in (
        f"/{APP_ID}/{KEY}/users/isvalidusertoken/{TOKEN}?user-token={TOKEN}",
        f"/{APP_ID}/{KEY}/users/restorepassword/{identity}",
        f"/apps/{APP_ID}/users/U-1?search={identity}",
    ):
        async with client.get(path) as response:
            assert response.status == 200
    written = lines.text
    assert TOKEN not in written and KEY not in written and "ann.smith" not in written
    assert [line["path"] for line in lines.access()] == [
        f"/{APP_ID}/[apiKey]/users/isvalidusertoken/[token]",
        f"/{APP_ID}/[apiKey]/users/restorepassword/[identity]",
        f"/apps/{APP_ID}/users/U-1",
    ]


async def test_a_path_no_route_serves_is_written_by_its_first_segment(client, lines):
    for path in (f"/{APP_ID}/{KEY}/users/nothing", "/nope", "/a%20b/c", "/"):
        async with client.get(path) as response:
            assert response.status == 404 and REQUEST_ID_HEADER in response.headers
    assert [(line["path"], line["status"]) for line in lines.access()] == [
        (f"/{APP_ID}/...", 404),
        ("/nope", 404),
        ("/[unmatched]/...", 404),
        ("/", 404),
    ]


async def test_a_harmless_parameter_that_is_no_plain_word_is_not_written(client, lines):
    async with client.get("/apps/a%0Ab/users/x%20y") as response:
        assert response.status == 200
    assert lines.access()[0]["path"] == "/apps/[app_id]/users/[object_id]"


async def test_answers_by_exception_static_files_and_failures_are_logged_too(client, lines):
    async with client.get("/redirect", allow_redirects=False) as response:
        assert response.status == 302 and REQUEST_ID_HEADER in response.headers
    async with client.get("/static/site.css") as response:
        assert response.status == 200 and REQUEST_ID_HEADER in response.headers
    async with client.get("/fails") as response:
        assert response.status == 500
    assert [(line["path"], line["status"]) for line in lines.access()] == [
        ("/redirect", 302),
        ("/static/site.css", 200),
        ("/fails", 500),
    ]


async def test_probes_are_written_at_debug(client, lines):
    async with client.get("/health"):
        pass
    assert lines.access()[0]["level"] == "DEBUG"
