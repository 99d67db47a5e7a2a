"""Sessions and app info as the official SDKs use them (docs/api.md, Sessions and password
recovery), through the real service: `GET /info`, `isvalidusertoken`, `logout` (3064), expiry
`sessionTtl` after the last use (written down at most once a minute), and the ways a session ends:
logout, disabling, a password change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.integration.registration.client import Api
from userreg.shared import passwords
from userreg.shared.clock import utcnow
from userreg.shared.db import App, SessionToken, User
from userreg.shared.tokens import hash_token

UNKNOWN_TOKEN = "Unknown-token_of-43-characters-0123456789ab"  # well formed: it is looked up


async def _logged_in(api: Api, email: str, password: str = "s3cret") -> dict:
    status, body = await api.register({"email": email, "password": password})
    assert status == 200, body
    status, body = await api.login(email, password)
    assert status == 200, body
    return body


async def _last_used(sessions, token: str):
    async with sessions() as session:
        return await session.scalar(
            select(SessionToken.last_used_at).where(SessionToken.token_hash == hash_token(token))
        )


async def _set_last_used(sessions, token: str, ago: timedelta) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(SessionToken).where(SessionToken.token_hash == hash_token(token)).values(last_used_at=utcnow() - ago)
        )


# --- app info ------------------------------------------------------------------------------------


async def test_info_describes_the_app_without_a_key_or_a_secret_setting(api_for):
    api = await api_for(
        name="Shop Front",
        email_confirmation_required=True,
        before_register_webhook_url="https://hooks.example.com/secret-path",
    )
    status, info = await api.info()
    assert status == 200
    assert info == {
        "appId": api.app.app_id,
        "appName": "Shop Front",
        "identityProperty": "email",
        "registrationEnabled": True,
        "emailConfirmationRequired": True,
        "loggers": [],
    }
    for secret in (api.app.rest_api_key, api.app.server_api_key, "secret-path"):
        assert secret not in str(info)
    assert (await api.info(key=api.app.server_api_key))[0] == 200
    status, body = await api.info(key="0A1B2C3D-0000-4000-8000-00000000ABCD")
    assert (status, body["code"]) == (401, 2002)


# --- isvalidusertoken --------------------------------------------------------------------------


async def test_a_login_token_and_a_guest_token_are_valid_in_their_app_only(api_for, unique_email):
    api, other = await api_for(), await api_for()
    token = (await _logged_in(api, unique_email()))["user-token"]
    _, guest = await api.guest()
    assert await api.is_valid_token(token) == (200, True)
    assert await api.is_valid_token(guest["user-token"]) == (200, True)
    assert await other.is_valid_token(token) == (200, False)  # another app's session
    assert await api.is_valid_token(UNKNOWN_TOKEN) == (200, False)
    for malformed in ("x", "not a token", "%00", token[:-1], token + "A"):
        assert await api.is_valid_token(malformed) == (200, False), malformed
    status, body = await api.is_valid_token(token, key="0A1B2C3D-0000-4000-8000-00000000ABCD")
    assert (status, body["code"]) == (401, 2002)


async def test_a_session_expires_session_ttl_after_its_last_use(api_for, unique_email, sessions):
    api = await api_for(session_ttl=3600)
    token = (await _logged_in(api, unique_email()))["user-token"]
    await _set_last_used(sessions, token, timedelta(seconds=3590))
    assert await api.is_valid_token(token) == (200, True)  # used again: another hour from now
    assert await _last_used(sessions, token) > utcnow() - timedelta(seconds=5)
    await _set_last_used(sessions, token, timedelta(seconds=3601))
    assert await api.is_valid_token(token) == (200, False)
    status, body = await api.logout(token)
    assert (status, body["code"]) == (401, 3064)
    assert await _last_used(sessions, token) is None  # an expired session is deleted when seen


async def test_a_use_is_written_down_at_most_once_a_minute(api_for, unique_email, sessions):
    api = await api_for()  # sessionTtl: 30 days, so a tenth of it is more than the minute
    token = (await _logged_in(api, unique_email()))["user-token"]
    created = await _last_used(sessions, token)
    assert await api.is_valid_token(token) == (200, True)
    assert await _last_used(sessions, token) == created  # a few ms old: not worth a write
    await _set_last_used(sessions, token, timedelta(seconds=61))
    stale = await _last_used(sessions, token)
    assert await api.is_valid_token(token) == (200, True)
    refreshed = await _last_used(sessions, token)
    assert refreshed > stale + timedelta(seconds=60)
    assert await api.is_valid_token(token) == (200, True)
    assert await _last_used(sessions, token) == refreshed


async def test_a_short_session_ttl_refreshes_after_a_tenth_of_it(api_for, unique_email, sessions):
    api = await api_for(session_ttl=100)
    token = (await _logged_in(api, unique_email()))["user-token"]
    await _set_last_used(sessions, token, timedelta(seconds=11))
    stale = await _last_used(sessions, token)
    assert await api.is_valid_token(token) == (200, True)
    assert await _last_used(sessions, token) > stale + timedelta(seconds=10)


# --- logout ------------------------------------------------------------------------------------


async def test_logout_ends_that_session_only(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    first = (await _logged_in(api, email))["user-token"]
    second = (await api.login(email, "s3cret"))[1]["user-token"]
    assert await api.logout(first) == (200, b"")
    assert await api.is_valid_token(first) == (200, False)
    assert await api.is_valid_token(second) == (200, True)
    async with sessions() as session:
        assert await session.get(SessionToken, hash_token(first)) is None
    status, body = await api.logout(first)  # already ended
    assert (status, body) == (401, {"code": 3064, "message": "Not existing user token"})


async def test_a_guest_logs_out_too(api_for):
    api = await api_for()
    _, guest = await api.guest()
    assert await api.logout(guest["user-token"]) == (200, b"")
    assert await api.is_valid_token(guest["user-token"]) == (200, False)


@pytest.mark.parametrize(
    "token",
    [None, "", "garbage", UNKNOWN_TOKEN, "other app"],
    ids=["no header", "empty", "garbage", "unknown", "other app"],
)
async def test_3064_without_a_live_token_of_the_app(api_for, unique_email, token):
    api, other = await api_for(), await api_for()
    other_token = None
    if token == "other app":
        token = other_token = (await _logged_in(other, unique_email()))["user-token"]
    status, body = await api.logout(token)
    assert (status, body["code"]) == (401, 3064)
    assert token is None or not token or token not in body["message"]
    if other_token:
        assert await other.is_valid_token(other_token) == (200, True)  # untouched in its own app


async def test_logout_needs_the_app_key_first(api_for, unique_email):
    api = await api_for()
    token = (await _logged_in(api, unique_email()))["user-token"]
    status, body = await api.logout(token, key="0A1B2C3D-0000-4000-8000-00000000ABCD")
    assert (status, body["code"]) == (401, 2002)
    assert await api.is_valid_token(token) == (200, True)


# --- sessions end with the user's status and password ----------------------------------------


async def test_disabling_the_user_ends_its_sessions(api_for, unique_email):
    api = await api_for()
    logged_in = await _logged_in(api, unique_email())
    assert (await api.set_status(logged_in["objectId"], "DISABLED"))[0] == 200
    assert await api.is_valid_token(logged_in["user-token"]) == (200, False)
    assert (await api.logout(logged_in["user-token"]))[1]["code"] == 3064


async def test_a_password_change_ends_every_session(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    first = await _logged_in(api, email)
    second = (await api.login(email, "s3cret"))[1]
    other_user = await _logged_in(api, unique_email())
    async with sessions() as session, session.begin():
        app = await session.get(App, api.app.app_id)
        user = await session.get(User, first["objectId"])
        await passwords.change_password(session, app, user, "$argon2id$not-a-real-hash")
    assert await api.is_valid_token(first["user-token"]) == (200, False)
    assert await api.is_valid_token(second["user-token"]) == (200, False)
    assert await api.is_valid_token(other_user["user-token"]) == (200, True)
