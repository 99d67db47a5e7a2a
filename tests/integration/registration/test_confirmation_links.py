"""Confirmation links issued by the registration API: `createEmailConfirmationURL` (server key)
and `resendconfirmation` with its cool-down (docs/api.md, Other operations)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.integration.registration.client import Api
from tests.support.links import age_links
from tests.support.polling import eventually
from userreg.shared.db import ConfirmationToken
from userreg.shared.tokens import hash_token, is_well_formed


async def _pending(api: Api, email: str) -> dict:
    status, user = await api.register({"email": email, "password": "pw"})
    assert status == 200 and user["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    return user


async def _tokens(sessions, object_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(ConfirmationToken).where(ConfirmationToken.user_id == object_id)
        )


async def _age_links(sessions, object_id: str, seconds: int) -> None:
    """Make the user's links look `seconds` older, as if the cool-down had passed."""
    await age_links(sessions, object_id, seconds)


# --- createEmailConfirmationURL ----------------------------------------------------------------


async def test_create_email_confirmation_url_returns_a_new_link(api_for, unique_email, sessions, settings):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    user = await _pending(api, email)

    status, body = await api.confirmation_url(email.upper())
    assert status == 200 and set(body) == {"confirmationURL"}
    prefix = f"{settings.public_confirmation_url}/{api.app.app_id}/confirm/"
    assert body["confirmationURL"].startswith(prefix)
    token = body["confirmationURL"].removeprefix(prefix)
    assert is_well_formed(token)
    async with sessions() as session:
        row = await session.get(ConfirmationToken, hash_token(token))
    assert row is not None and row.user_id == user["objectId"]
    assert await _tokens(sessions, user["objectId"]) == 2  # the registration's link still exists


async def test_create_email_confirmation_url_needs_the_server_key(api_for, unique_email):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    await _pending(api, email)
    status, body = await api.confirmation_url(email, key=api.app.rest_api_key)
    assert (status, body["code"]) == (403, 3054)


async def test_create_email_confirmation_url_errors(api_for, unique_email):
    off = await api_for()
    email = unique_email()
    await off.register({"email": email, "password": "pw"})
    status, body = await off.confirmation_url(email)
    assert (status, body["code"]) == (400, 3103)

    api = await api_for(email_confirmation_required=True)
    status, body = await api.confirmation_url(unique_email())
    assert (status, body["code"]) == (404, 3104)

    user = await _pending(api, email)
    await api.set_status(user["objectId"], "ENABLED")
    status, body = await api.confirmation_url(email)
    assert (status, body["code"]) == (400, 3102)


# --- resendconfirmation ------------------------------------------------------------------------


async def test_resend_issues_a_new_link_and_publishes_it(api_for, unique_email, sessions, event_queue):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    user = await _pending(api, email)
    await _age_links(sessions, user["objectId"], 3600)

    status, body = await api.resend(email)
    assert (status, body) == (200, b"")
    assert await _tokens(sessions, user["objectId"]) == 2  # earlier links keep working

    async def requested():
        while (message := await event_queue.get(fail=False, no_ack=True)) is not None:
            event = json.loads(message.body)
            if event["type"] == "user.confirmation_requested" and event["user"]["objectId"] == user["objectId"]:
                return event
        return None

    event = await eventually(requested, timeout=15, what="user.confirmation_requested")
    token = event["confirmation"]["url"].rsplit("/", 1)[1]
    async with sessions() as session:
        assert await session.get(ConfirmationToken, hash_token(token)) is not None


async def test_resend_within_the_cool_down_is_9001_counting_the_registration_link(api_for, unique_email, sessions):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    user = await _pending(api, email)

    async with api.client.post(api.path(f"/users/resendconfirmation/{email}")) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (429, 9001)
        assert 1 <= int(response.headers["Retry-After"]) <= 60

    await _age_links(sessions, user["objectId"], 61)
    assert (await api.resend(email))[0] == 200
    status, body = await api.resend(email)  # the link just sent starts a new cool-down
    assert (status, body["code"]) == (429, 9001)


async def test_the_cool_down_is_a_setting(start_service, make_app, unique_email):
    client = await start_service(resend_cooldown_seconds=0)
    api = Api(client, await make_app(email_confirmation_required=True))
    email = unique_email()
    await _pending(api, email)
    for _ in range(3):
        assert (await api.resend(email))[0] == 200


@pytest.mark.parametrize("case", ["confirmation off", "unknown", "confirmed", "disabled"])
async def test_resend_errors(api_for, unique_email, case):
    api = await api_for(email_confirmation_required=case != "confirmation off")
    email = unique_email()
    status, user = await api.register({"email": email, "password": "pw"})
    if case in ("confirmed", "disabled"):
        await api.set_status(user["objectId"], "ENABLED" if case == "confirmed" else "DISABLED")
    status, body = await api.resend(unique_email() if case == "unknown" else email)
    expected = {
        "confirmation off": (400, 3103),
        "unknown": (404, 3104),
        "confirmed": (400, 3102),
        "disabled": (400, 3102),
    }[case]
    assert (status, body["code"]) == expected


async def test_resend_works_with_either_key(api_for, unique_email, sessions):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    user = await _pending(api, email)
    await _age_links(sessions, user["objectId"], 3600)
    assert (await api.resend(email, key=api.app.server_api_key))[0] == 200
    assert (await api.resend(email, key="0A1B2C3D-0000-4000-8000-00000000ABCD"))[1]["code"] == 2002
