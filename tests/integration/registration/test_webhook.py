"""The before-register webhook, answered by a tiny aiohttp server of the test's own."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from tests.integration.registration.client import Api
from tests.support.polling import free_port
from userreg.shared.db import User


class Webhook:
    """Records what it received and answers as told."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        self.body = b"{}"
        self.hang = asyncio.Event()  # set: answer at once; clear: never answer
        self.hang.set()

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        await self.hang.wait()
        return web.Response(status=self.status, body=self.body, content_type="application/json")


@pytest.fixture
async def webhook():
    hook = Webhook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    hook.url = str(server.make_url("/hook"))
    yield hook
    hook.hang.set()
    await server.close()


async def _users(sessions, app_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(User).where(User.app_id == app_id))


async def test_an_allowing_webhook_sees_the_candidate_without_the_password(api_for, webhook, unique_email):
    api = await api_for(before_register_webhook_url=webhook.url)
    email = unique_email()
    status, _user = await api.register({"email": email, "password": "hunter2-secret", "name": "Ann"})
    assert status == 200
    [call] = webhook.received
    assert call["event"] == "beforeRegister" and call["appId"] == api.app.app_id
    assert call["user"] == {"email": email, "name": "Ann", "blUserLocale": "en"}
    assert "hunter2-secret" not in json.dumps(call)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b'{"allow": false, "message": "This domain is\\r\\nblocked"}', "This domain is blocked"),
        (200, b'{"allowed": false}', "rejected"),
        (500, b"{}", "HTTP 500"),
        (404, b"", "HTTP 404"),
    ],
)
async def test_a_refusing_or_failing_webhook_is_3014_and_nothing_is_created(
    api_for, webhook, unique_email, sessions, status, body, message
):
    api = await api_for(before_register_webhook_url=webhook.url)
    webhook.status, webhook.body = status, body
    answer_status, answer = await api.register({"email": unique_email(), "password": "pw"})
    assert (answer_status, answer["code"]) == (502, 3014)
    assert message in answer["message"]
    assert "\r" not in answer["message"] and "\n" not in answer["message"]
    assert await _users(sessions, api.app.app_id) == 0


async def test_a_webhook_that_does_not_answer_in_time_is_3014(start_service, make_app, webhook, unique_email, sessions):
    client = await start_service(webhook_timeout_seconds=0.5)
    api = Api(client, await make_app(before_register_webhook_url=webhook.url))
    webhook.hang.clear()
    status, body = await api.register({"email": unique_email(), "password": "pw"})
    assert (status, body["code"]) == (502, 3014)
    assert "timed out" in body["message"]
    assert await _users(sessions, api.app.app_id) == 0


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirecting_webhook_is_3014_and_the_redirect_is_not_followed(
    api_for, webhook, unique_email, sessions, status
):
    # `webhook` (which would allow) is where the app's webhook redirects to: it must never be asked.
    async def redirect(request: web.Request) -> web.Response:
        raise _redirect(status, webhook.url)

    redirecting = web.Application()
    redirecting.router.add_post("/hook", redirect)
    server = TestServer(redirecting)
    await server.start_server()
    try:
        api = await api_for(before_register_webhook_url=str(server.make_url("/hook")))
        answer_status, answer = await api.register({"email": unique_email(), "password": "pw"})
    finally:
        await server.close()
    assert (answer_status, answer["code"]) == (502, 3014)
    assert f"HTTP {status}" in answer["message"]
    assert webhook.received == []
    assert await _users(sessions, api.app.app_id) == 0


def _redirect(status: int, location: str) -> web.HTTPException:
    return {
        301: web.HTTPMovedPermanently,
        302: web.HTTPFound,
        303: web.HTTPSeeOther,
        307: web.HTTPTemporaryRedirect,
        308: web.HTTPPermanentRedirect,
    }[status](location)


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/hook", "not a url"])
async def test_an_unreachable_webhook_is_3014(api_for, unique_email, url):
    api = await api_for(before_register_webhook_url=url.format(port=free_port()))
    status, body = await api.register({"email": unique_email(), "password": "pw"})
    assert (status, body["code"]) == (502, 3014)


async def test_the_webhook_comes_after_the_other_checks_and_before_the_duplicate_check(api_for, webhook, unique_email):
    api = await api_for(before_register_webhook_url=webhook.url)
    _status, body = await api.register({"email": "not-an-address", "password": "pw"})
    assert body["code"] == 3040 and webhook.received == []  # 3040 first, the webhook is not asked

    email = unique_email()
    assert (await api.register({"email": email, "password": "pw"}))[0] == 200
    webhook.body = b'{"allow": false}'
    _status, body = await api.register({"email": email, "password": "pw"})
    assert body["code"] == 3014  # 3014 before 3033


async def test_a_converted_guest_is_named_to_the_webhook(api_for, webhook, unique_email):
    api = await api_for(before_register_webhook_url=webhook.url)
    _, guest = await api.guest()
    status, _ = await api.register({"email": unique_email(), "password": "pw", "objectId": guest["objectId"]})
    assert status == 200
    assert webhook.received[-1]["user"]["objectId"] == guest["objectId"]


async def test_an_object_id_that_is_no_guest_is_refused_before_the_webhook_is_asked(api_for, webhook, unique_email):
    api = await api_for(before_register_webhook_url=webhook.url)
    _, registered = await api.register({"email": unique_email(), "password": "pw"})
    webhook.body = b'{"allow": false}'
    webhook.received.clear()
    for object_id in (registered["objectId"], "6F1C0D4E-0000-4000-8000-000000000000"):
        status, body = await api.register({"email": unique_email(), "password": "pw", "objectId": object_id})
        assert (status, body["code"]) == (400, 3021)  # 3021 comes before 3014 in the documented order
    assert webhook.received == []
