"""Browser clients (docs/api.md, Browser clients) through the real service: preflights, and the CORS headers of every
answer of the API, errors included, by the app's `allowedOrigins`; an origin that is not allowed
gets no CORS header at all, and a request naming no app or a wrong key is answered as for `*`."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from tests.integration.registration.client import Api
from tests.support.polling import eventually
from userreg.shared.db import App

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.net"
UNKNOWN_APP = "0A1B2C3D-0000-4000-8000-00000000ABCD"


def _cors(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items() if name.lower().startswith("access-control-")}


async def _preflight(
    api: Api, path: str, origin: str, *, method: str = "POST", headers: str | None = None, **kwargs: Any
):
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    async with api.client.options(api.path(path, **kwargs), headers=asked) as response:
        assert await response.read() == b""
        return response.status, response.headers


async def _get(api: Api, path: str, origin: str | None, **kwargs: Any):
    headers = {"Origin": origin} if origin else {}
    async with api.client.get(api.path(path, **kwargs), headers=headers) as response:
        return response.status, response.headers, await response.json()


async def test_by_default_any_origin_may_call_and_read(api_for, unique_email):
    api = await api_for()
    status, headers = await _preflight(
        api, "/users/register", OTHER, headers="content-type,user-token,application-type"
    )
    assert status == 204
    assert _cors(headers) == {
        "access-control-allow-origin": "*",
        "access-control-allow-methods": "GET, POST, PUT",
        "access-control-allow-headers": "content-type, user-token, application-type",
        "access-control-max-age": "600",
    }
    email = unique_email()
    async with api.client.post(
        api.path("/users/register"), json={"email": email, "password": "pw"}, headers={"Origin": OTHER}
    ) as response:
        assert response.status == 200
        assert _cors(response.headers) == {
            "access-control-allow-origin": "*",
            "access-control-expose-headers": "Retry-After, X-Request-Id",
        }
    async with api.client.post(
        api.path("/users/register"), json={"email": email, "password": "pw"}, headers={"Origin": OTHER}
    ) as response:  # an error: readable too
        assert (response.status, (await response.json())["code"]) == (409, 3033)
        assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_an_origin_list_lets_its_origins_read_and_no_other(api_for, unique_email):
    api = await api_for(allowed_origins=f"{ALLOWED} http://localhost:3000")
    status, headers = await _preflight(api, "/users/login", ALLOWED, headers="Content-Type")
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == ALLOWED
    assert headers["Access-Control-Allow-Headers"] == "content-type"
    assert "Origin" in headers["Vary"]

    status, headers = await _preflight(api, "/users/login", OTHER, headers="Content-Type")
    assert status == 204 and _cors(headers) == {}  # the browser refuses to send the request
    assert "Origin" in headers["Vary"]

    for origin, expected in (
        (ALLOWED, ALLOWED),
        ("http://localhost:3000", "http://localhost:3000"),
        (OTHER, None),
        ("null", None),
        (None, None),
    ):
        status, headers, body = await _get(api, "/info", origin)
        assert status == 200 and body["appId"] == api.app.app_id
        assert headers.get("Access-Control-Allow-Origin") == expected, origin
        assert headers["Vary"] == "Origin"  # what an answer holds depends on the Origin
        if expected is None:
            assert _cors(headers) == {}
        else:
            assert headers["Access-Control-Expose-Headers"] == "Retry-After, X-Request-Id"


async def test_errors_of_an_app_carry_its_own_policy(api_for):
    api = await api_for(allowed_origins=ALLOWED)
    for path in ("/users/logout", "/users/nothing-here", "/users/restorepassword/nobody@example.com"):
        status, headers, body = await _get(api, path, ALLOWED)
        assert status in (401, 404) and set(body) == {"code", "message"}
        assert headers["Access-Control-Allow-Origin"] == ALLOWED, path
        status, headers, body = await _get(api, path, OTHER)
        assert status in (401, 404) and _cors(headers) == {}, path
    async with api.client.delete(api.path("/users/register"), headers={"Origin": ALLOWED}) as response:
        assert response.status == 405 and response.headers["Access-Control-Allow-Origin"] == ALLOWED
    # Refused with the REST key where the server key is needed: still the app's answer.
    async with api.client.put(
        api.path("/users/x/status"), json={"userStatus": "ENABLED"}, headers={"Origin": OTHER}
    ) as response:
        assert (await response.json())["code"] == 3054 and _cors(response.headers) == {}


@pytest.mark.parametrize("case", ["unknown app", "wrong key", "malformed appId"])
async def test_no_app_or_a_wrong_key_is_answered_as_for_any_origin(api_for, case):
    """The 2002 is the same envelope for an unknown app and a wrong key; its CORS headers too, so
    a page can read it and cannot tell whether the appId exists."""
    api = await api_for(allowed_origins=ALLOWED)
    target = {
        "unknown app": {"app_id": UNKNOWN_APP},
        "wrong key": {"key": "not-the-key"},
        "malformed appId": {"app_id": "not-an-app"},
    }[case]
    status, headers = await _preflight(api, "/users/register", OTHER, **target)
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"
    status, headers, body = await _get(api, "/info", OTHER, **target)
    assert (status, body["code"]) == (401, 2002)
    assert headers["Access-Control-Allow-Origin"] == "*" and "Vary" not in headers


async def test_a_rate_limited_answer_lets_the_page_read_retry_after(api_for):
    api = await api_for(client_rate_limit="1/60s", allowed_origins=ALLOWED)
    await api.guest()
    async with api.client.post(api.path("/users/register/guest"), headers={"Origin": ALLOWED}) as response:
        assert response.status == 429 and "Retry-After" in response.headers
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        assert response.headers["Access-Control-Expose-Headers"] == "Retry-After, X-Request-Id"


async def test_a_preflight_asking_for_a_header_not_allowed_gets_the_allowed_list(api_for):
    api = await api_for()
    status, headers = await _preflight(api, "/users/register", ALLOWED, headers="content-type, x-secret")
    assert status == 204
    allowed = {name.strip().lower() for name in headers["Access-Control-Allow-Headers"].split(",")}
    assert "x-secret" not in allowed and {"content-type", "user-token", "application-type"} <= allowed


async def test_a_preflight_is_answered_on_every_path_of_the_api_and_counted(api_for, client):
    api = await api_for()
    for path in ("/users/logout", "/users/isvalidusertoken/x", "/users/nowhere", ""):
        status, headers = await _preflight(api, path, ALLOWED, method="GET", headers="user-token")
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "*", path
    async with client.get("/metrics") as response:
        assert 'route="preflight",status="204"' in await response.text()


async def test_an_options_request_that_is_no_preflight_is_not_served(api_for):
    api = await api_for()
    async with api.client.options(api.path("/users/register"), headers={"Origin": ALLOWED}) as response:
        assert response.status == 405 and (await response.json())["code"] == 9000
        assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_the_operations_endpoints_answer_no_cors(client):
    for path in ("/health", "/openapi.json"):
        async with client.get(path, headers={"Origin": ALLOWED}) as response:
            assert response.status == 200 and _cors(response.headers) == {}, path


async def test_a_changed_setting_applies_at_once(api_for, sessions):
    api = await api_for(allowed_origins=ALLOWED)
    assert (await _get(api, "/info", OTHER))[1].get("Access-Control-Allow-Origin") is None
    async with sessions() as session, session.begin():
        await session.execute(
            update(App).where(App.app_id == api.app.app_id).values(allowed_origins=f"{ALLOWED} {OTHER}")
        )

    async def other_allowed():
        return (await _get(api, "/info", OTHER))[1].get("Access-Control-Allow-Origin") == OTHER

    await eventually(other_allowed, timeout=10, what="the new allowedOrigins")


async def test_with_the_database_away_an_error_is_readable_and_a_preflight_fails_closed(start_service, make_app):
    app = await make_app(allowed_origins=ALLOWED)
    client = await start_service(database_url="postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
    api = Api(client, app)
    status, headers, body = await _get(api, "/info", OTHER)
    assert (status, body["code"]) == (503, 3021)
    assert headers["Access-Control-Allow-Origin"] == "*"  # the envelope says only that
    async with client.options(
        api.path("/users/register"), headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}
    ) as response:
        assert response.status == 503 and _cors(response.headers) == {}
        assert (await response.json())["code"] == 3021
