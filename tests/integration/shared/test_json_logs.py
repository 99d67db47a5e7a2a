"""LOG_FORMAT=json through a user's whole way, registration and confirmation-web as their processes
run them: every line is one JSON object with its fields, the lines of a request name it and its
app, and no password, hash, token, key or identity is in any of them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.logs import json_lines, serve
from userreg.confirmation_web.app import create_app as confirmation_web
from userreg.registration.app import create_app as registration
from userreg.shared.runtime.access import REQUEST_ID_HEADER

PASSWORD = "correct horse battery staple 42"
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends from the page


@pytest.fixture
async def bases(settings) -> AsyncIterator[tuple[str, str]]:
    """(registration's base URL, confirmation-web's); no cool-down between a user's emails."""
    settings = settings.model_copy(update={"resend_cooldown_seconds": 0})
    servers = [await serve(registration(settings)), await serve(confirmation_web(settings, run_outbox_relay=False))]
    yield tuple(str(server.make_url("")).rstrip("/") for server in servers)
    for server in servers:
        await server.close()


async def test_a_users_way_logs_json_lines_without_secrets(bases, make_app):
    api_base, pages_base = bases
    app = await make_app(email_confirmation_required=True)
    api = f"{api_base}/{app.app_id}/{app.rest_api_key}/users"
    email = f"ann.{app.app_id[:8].lower()}@example.com"
    with json_lines("test") as lines:
        async with aiohttp.ClientSession() as http:

            async def call(method: str, url: str, status: int = 200, **kwargs) -> aiohttp.ClientResponse:
                async with http.request(method, url, allow_redirects=False, **kwargs) as response:
                    await response.read()
                    assert response.status == status, (url, await response.text())
                    return response

            registered = await call(
                "POST",
                f"{api}/register",
                json={"email": email, "password": PASSWORD},
                headers={REQUEST_ID_HEADER: "way-register"},
            )
            assert registered.headers[REQUEST_ID_HEADER] == "way-register"
            async with http.post(
                f"{api_base}/{app.app_id}/{app.server_api_key}/users/createEmailConfirmationURL/{email}"
            ) as response:
                link = (await response.json())["confirmationURL"]
            token = link.rsplit("/", 1)[1]
            await call("GET", f"{pages_base}/{app.app_id}/confirm/{token}")
            await call("POST", f"{pages_base}/{app.app_id}/confirm", data={"token": token}, headers=SAME_ORIGIN)
            await call("POST", f"{api}/login", 401, json={"login": email, "password": "wrong"})
            async with http.post(f"{api}/login", json={"login": email, "password": PASSWORD}) as response:
                user_token = (await response.json())["user-token"]
            await call("GET", f"{api}/isvalidusertoken/{user_token}")
            await call("GET", f"{api}/logout", headers={"user-token": user_token})
            await call("GET", f"{api}/restorepassword/{email}")
            await call("GET", f"{api}/nothing/{user_token}?user-token={user_token}", 404)

    every = lines.all()
    for line in every:
        assert {"time", "service", "level", "logger", "message"} <= set(line), line
    access = lines.access()
    assert len(access) == 10 and all(len(line["request_id"]) >= 8 for line in access)
    # The app of a route's path; a path no route serves names none.
    assert [line.get("app_id") for line in access] == [app.app_id] * 9 + [None]
    assert {line["path"] for line in access} >= {
        f"/{app.app_id}/[apiKey]/users/register",
        f"/{app.app_id}/confirm/[token]",
        f"/{app.app_id}/[apiKey]/users/isvalidusertoken/[token]",
        f"/{app.app_id}/[apiKey]/users/restorepassword/[identity]",
        f"/{app.app_id}/...",
    }
    [register] = [line for line in access if line["request_id"] == "way-register"]
    assert (register["method"], register["status"]) == ("POST", 200)
    # What the services themselves wrote while serving a request names the request too.
    own = [line for line in every if line["logger"] != "userreg.access" and "request_id" in line]
    assert any(line["message"].startswith("password reset requested") for line in own)

    written = lines.text
    for secret in (PASSWORD, token, user_token, app.rest_api_key, app.server_api_key, email):
        assert secret not in written
    assert not re.search(r"\$argon2", written)
