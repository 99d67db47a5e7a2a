"""`GET /users/restorepassword/{identity}` (docs/api.md, Sessions and password recovery) through the
real service: the reset link leaves in the `user.password_reset_requested` event (through the
outbox), its token is stored only as its digest, the cool-down and the rate limit hold, and neither
the token nor the link reaches a log line."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.integration.registration.client import Api
from tests.support.polling import eventually
from userreg.shared.clock import utcnow
from userreg.shared.db import MailboxEmail, PasswordResetToken
from userreg.shared.tokens import hash_token, is_well_formed

RESET_EVENT = "user.password_reset_requested"


async def _reset_events(queue, object_id: str, count: int = 1) -> list[dict]:
    """The first `count` reset events about this user (others on the shared exchange are skipped)."""
    found: list[dict] = []

    async def collect():
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            event = json.loads(message.body)
            if event["user"]["objectId"] == object_id and message.routing_key == RESET_EVENT:
                assert message.type == RESET_EVENT and message.message_id == event["id"]
                found.append(event)
        return len(found) >= count

    await eventually(collect, timeout=15, interval=0.02, what=f"{count} reset event(s) of {object_id}")
    return found


async def _registered(api: Api, email: str) -> dict:
    status, user = await api.register({"email": email, "password": "old-secret", "name": "Ann"})
    assert status == 200, user
    return user


async def _reset_tokens(sessions, user_id: str) -> list[PasswordResetToken]:
    async with sessions() as session:
        return list(await session.scalars(select(PasswordResetToken).where(PasswordResetToken.user_id == user_id)))


async def test_the_reset_link_is_emailed_through_the_outbox_and_stored_hashed(
    api_for, unique_email, event_queue, sessions, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    api = await api_for(password_reset_link_ttl=1800)
    email = unique_email()
    user = await _registered(api, email)
    asked = utcnow()
    assert await api.restore_password(email.upper()) == (200, b"")  # the identity in any case

    [event] = await _reset_events(event_queue, user["objectId"])
    assert event["type"] == RESET_EVENT and event["appId"] == api.app.app_id
    assert event["confirmation"] is None
    assert event["user"]["email"] == email and event["user"]["name"] == "Ann"
    link = event["passwordReset"]["url"]
    base, app_id, path, token = link.rsplit("/", 3)
    assert (base, app_id, path) == (settings.public_confirmation_url, api.app.app_id, "reset-password")
    assert is_well_formed(token)  # 256 random bits
    expires = datetime.fromisoformat(event["passwordReset"]["expiresAt"])
    assert timedelta(seconds=1790) < expires - asked < timedelta(seconds=1810)
    assert "old-secret" not in json.dumps(event)

    [stored] = await _reset_tokens(sessions, user["objectId"])
    assert stored.token_hash == hash_token(token) and stored.app_id == api.app.app_id
    assert token.encode() not in stored.token_hash
    # Every log line, at DEBUG, but the AMQP client's dumps of the frames it carries (the event's).
    logged = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith(("aiormq", "aio_pika"))
    )
    assert "password reset requested" in logged
    assert token not in logged and stored.token_hash.hex() not in logged


async def test_a_second_request_within_the_cool_down_is_9001_with_retry_after(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    user = await _registered(api, email)
    assert (await api.restore_password(email))[0] == 200
    async with api.client.get(api.path(f"/users/restorepassword/{email}")) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (429, 9001)
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "password-reset link" in body["message"]
    assert len(await _reset_tokens(sessions, user["objectId"])) == 1  # nothing more was issued


async def test_the_cool_down_counts_the_mailbox_too(start_service, make_app, unique_email, sessions):
    """Two users sharing one mailbox (the identity is not the address): one email per cool-down."""
    client = await start_service(resend_cooldown_seconds=1)
    api = Api(client, await make_app(identity_property="nickname"))
    mailbox = unique_email()
    for nickname in ("ann", "bob"):
        status, body = await api.register({"nickname": nickname, "email": mailbox, "password": "pw"})
        assert status == 200, body
    assert (await api.restore_password("ann"))[0] == 200
    status, body = await api.restore_password("bob")
    assert (status, body["code"]) == (429, 9001)
    async with sessions() as session:
        emails = await session.scalar(
            select(func.count()).select_from(MailboxEmail).where(MailboxEmail.app_id == api.app.app_id)
        )
    assert emails == 1


@pytest.mark.parametrize("identity", ["nobody@example.com", "other app", "x" * 600, "\u0000"])
async def test_3020_when_no_user_of_the_app_has_the_identity(api_for, unique_email, identity):
    api, other = await api_for(), await api_for()
    if identity == "other app":
        identity = unique_email()
        await _registered(other, identity)
    status, body = await api.restore_password(identity)
    assert (status, body["code"]) == (404, 3020)


async def test_a_guest_has_no_identity_to_restore(api_for):
    api = await api_for()
    _, guest = await api.guest()
    status, body = await api.restore_password(guest["objectId"])
    assert (status, body["code"]) == (404, 3020)


@pytest.mark.parametrize("status_name", ["DISABLED", "EMAIL_CONFIRMATION_PENDING"])
async def test_a_disabled_or_pending_user_gets_the_link_like_anyone(
    start_service, make_app, unique_email, sessions, status_name
):
    client = await start_service(resend_cooldown_seconds=1)
    api = Api(client, await make_app(email_confirmation_required=True))
    email = unique_email()
    user = await _registered(api, email)
    if status_name == "DISABLED":
        assert (await api.set_status(user["objectId"], "DISABLED"))[0] == 200
    # The confirmation email went to the mailbox a moment ago: within its cool-down, 9001.
    assert (await api.restore_password(email))[1]["code"] == 9001
    await asyncio.sleep(1.1)
    assert (await api.restore_password(email))[0] == 200
    assert len(await _reset_tokens(sessions, user["objectId"])) == 1


async def test_restorepassword_counts_against_the_client_rate_limit(api_for, unique_email):
    api = await api_for(client_rate_limit="2/60s")
    assert (await api.restore_password(unique_email()))[1]["code"] == 3020
    assert (await api.restore_password(unique_email()))[1]["code"] == 3020
    async with api.client.get(api.path(f"/users/restorepassword/{unique_email()}")) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (429, 9008)
        assert int(response.headers["Retry-After"]) >= 1


async def test_restorepassword_needs_the_app_key(api_for, unique_email):
    api = await api_for()
    email = unique_email()
    await _registered(api, email)
    status, body = await api.restore_password(email, key="0A1B2C3D-0000-4000-8000-00000000ABCD")
    assert (status, body["code"]) == (401, 2002)
