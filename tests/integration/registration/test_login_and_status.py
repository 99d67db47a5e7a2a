"""Guests, login and its errors, and server-key status changes, through the real service."""

from __future__ import annotations

import statistics
import time

import pytest
from sqlalchemy import func, select

from tests.integration.registration.client import Api
from userreg.shared.db import SessionToken, User
from userreg.shared.tokens import hash_token


async def _registered(api: Api, email: str, password: str = "s3cret") -> dict:
    status, body = await api.register({"email": email, "password": password, "name": "Ann"})
    assert status == 200, body
    return body


# --- guests ------------------------------------------------------------------------------------


async def test_a_guest_gets_a_user_token_stored_only_as_a_hash(api_for, sessions):
    api = await api_for()
    status, guest = await api.guest(headers={"Accept-Language": "fr"})
    assert status == 200
    assert guest["userStatus"] == "GUEST"
    assert guest["blUserLocale"] == "fr"
    assert len(guest["user-token"]) >= 43
    async with sessions() as session:
        row = await session.get(SessionToken, hash_token(guest["user-token"]))
    assert row is not None and row.user_id == guest["objectId"]


async def test_a_guest_cannot_log_in(api_for):
    api = await api_for()
    await api.guest()
    status, body = await api.login("", "x")
    assert (status, body["code"]) == (400, 3006)


async def test_guest_registration_needs_a_valid_key(api_for):
    api = await api_for()
    status, body = await api.guest(key="0A1B2C3D-0000-4000-8000-00000000ABCD")
    assert (status, body["code"]) == (401, 2002)


# --- login -------------------------------------------------------------------------------------


async def test_login_returns_the_user_with_a_token_and_sets_last_login(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    registered = await _registered(api, email)

    status, user = await api.login(email.upper(), "s3cret")  # the identity in any case
    assert status == 200
    assert user["objectId"] == registered["objectId"]
    assert isinstance(user["lastLogin"], int) and user["lastLogin"] >= registered["created"]
    assert "password" not in user and "s3cret" not in str(user)
    token = user["user-token"]
    async with sessions() as session:
        row = await session.get(SessionToken, hash_token(token))
        stored = await session.get(User, registered["objectId"])
        raw_tokens = await session.scalar(
            select(func.count()).select_from(SessionToken).where(SessionToken.token_hash == token.encode())
        )
    assert row is not None and row.app_id == api.app.app_id
    assert raw_tokens == 0
    assert stored.last_login is not None

    status, again = await api.login(email, "s3cret")
    assert again["user-token"] != token


@pytest.mark.parametrize("case", ["wrong password", "unknown login", "other app"])
async def test_3003_is_the_same_for_a_wrong_password_and_an_unknown_login(api_for, unique_email, case):
    api, other = await api_for(), await api_for()
    email = unique_email()
    await _registered(other if case == "other app" else api, email)
    login = unique_email() if case == "unknown login" else email
    status, body = await api.login(login, "wrong" if case == "wrong password" else "s3cret")
    assert status == 401
    assert body == {"code": 3003, "message": "Invalid login or password"}


async def test_an_unknown_login_takes_as_long_as_a_wrong_password(start_service, make_app, unique_email):
    """With real argon2id costs, an unknown login is verified against a dummy hash."""
    client = await start_service(argon2_memory_kib=19456, argon2_time_cost=2, argon2_parallelism=1)
    api = Api(client, await make_app())
    email = unique_email()
    await _registered(api, email)

    async def timed(login: str) -> float:
        started = time.perf_counter()
        status, _ = await api.login(login, "wrong")
        assert status == 401
        return time.perf_counter() - started

    known, unknown = [], []
    for _ in range(7):  # interleaved, so that a busy moment of the machine hits both alike
        known.append(await timed(email))
        unknown.append(await timed(unique_email()))
    ratio = statistics.median(unknown) / statistics.median(known)
    # Without the dummy verification an unknown login would answer in a small fraction of the time.
    assert 0.33 < ratio < 3, (known, unknown)


async def test_3090_for_a_disabled_user(api_for, unique_email):
    api = await api_for()
    email = unique_email()
    user = await _registered(api, email)
    assert (await api.set_status(user["objectId"], "DISABLED"))[0] == 200
    status, body = await api.login(email, "s3cret")
    assert (status, body["code"]) == (403, 3090)
    status, body = await api.login(email, "wrong")  # the password is checked first: no status leak
    assert (status, body["code"]) == (401, 3003)


async def test_9002_until_the_email_is_confirmed(api_for, unique_email):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    user = await _registered(api, email)
    status, body = await api.login(email, "s3cret")
    assert (status, body["code"]) == (403, 9002)
    assert (await api.set_status(user["objectId"], "ENABLED"))[0] == 200
    assert (await api.login(email, "s3cret"))[0] == 200


@pytest.mark.parametrize(
    "body",
    [{"login": "a@example.com"}, {"password": "x"}, {"login": "", "password": "x"}, {"login": 12, "password": "x"}],
)
async def test_3006_without_login_or_password(api_for, body):
    api = await api_for()
    status, answer = await api.call("POST", "/users/login", json=body)
    assert (status, answer["code"]) == (400, 3006)


@pytest.mark.parametrize(
    ("data", "content_type", "http"),
    [
        (b"not json", "application/json", 400),
        (b"[]", "application/json", 400),
        (b'{"login": "a", "password": "b"}', "text/plain", 415),
    ],
)
async def test_9005_for_a_login_body_that_is_not_a_json_object(api_for, data, content_type, http):
    api = await api_for()
    status, answer = await api.call("POST", "/users/login", data=data, headers={"Content-Type": content_type})
    assert (status, answer["code"]) == (http, 9005)


# --- status changes ----------------------------------------------------------------------------


async def test_disable_and_enable_again(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    user = await _registered(api, email)
    _, logged_in = await api.login(email, "s3cret")

    status, body = await api.set_status(user["objectId"], "DISABLED")
    assert (status, body) == (200, b"")
    async with sessions() as session:
        stored = await session.get(User, user["objectId"])
        assert stored.status.value == "DISABLED"
        assert await session.get(SessionToken, hash_token(logged_in["user-token"])) is None  # sessions ended

    assert (await api.set_status(user["objectId"], "DISABLED"))[0] == 200  # already: accepted, no change
    assert (await api.set_status(user["objectId"].lower(), "ENABLED"))[0] == 200
    assert (await api.login(email, "s3cret"))[0] == 200


async def test_a_pending_user_can_be_disabled(api_for, unique_email):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    user = await _registered(api, email)
    assert (await api.set_status(user["objectId"], "DISABLED"))[0] == 200
    _status, body = await api.login(email, "s3cret")
    assert body["code"] == 3090


async def test_3054_with_the_rest_key(api_for, unique_email):
    api = await api_for()
    user = await _registered(api, unique_email())
    status, body = await api.set_status(user["objectId"], "DISABLED", key=api.app.rest_api_key)
    assert (status, body["code"]) == (403, 3054)


async def test_2002_with_a_foreign_key(api_for, unique_email):
    api, other = await api_for(), await api_for()
    user = await _registered(api, unique_email())
    status, body = await api.set_status(user["objectId"], "DISABLED", key=other.app.server_api_key)
    assert (status, body["code"]) == (401, 2002)


@pytest.mark.parametrize("object_id", ["0A1B2C3D-0000-4000-8000-00000000ABCD", "not-an-id", "foreign"])
async def test_9004_for_an_unknown_user(api_for, unique_email, object_id):
    api, other = await api_for(), await api_for()
    if object_id == "foreign":
        object_id = (await _registered(other, unique_email()))["objectId"]
    status, body = await api.set_status(object_id, "DISABLED")
    assert (status, body["code"]) == (404, 9004)


@pytest.mark.parametrize(
    "body", [{"userStatus": "GUEST"}, {"userStatus": "EMAIL_CONFIRMATION_PENDING"}, {"status": "ENABLED"}, {}]
)
async def test_9005_for_a_status_that_cannot_be_asked_for(api_for, unique_email, body):
    api = await api_for()
    user = await _registered(api, unique_email())
    status, answer = await api.call("PUT", f"/users/{user['objectId']}/status", json=body, key=api.app.server_api_key)
    assert (status, answer["code"]) == (400, 9005)


async def test_9006_for_a_guest(api_for):
    api = await api_for()
    _, guest = await api.guest()
    status, body = await api.set_status(guest["objectId"], "ENABLED")
    assert (status, body["code"]) == (409, 9006)
