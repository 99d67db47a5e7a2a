"""A signed-in user's own record through the real service: `PUT /users/{objectId}` (register's rules,
who may, a password change ending the other sessions with its notice, the identity unique across a
change, two users racing for one address, an email change waiting for its confirmation) and `GET
/data/Users/{objectId}` (test_profile_checks.py: verifypassowrd and userclassprops)."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from tests.support.polling import eventually
from userreg.shared.db import EmailChangeToken, SchemaColumn
from userreg.shared.tokens import hash_token

PASSWORD_CHANGED = "user.password_changed"
EMAIL_CHANGE_REQUESTED = "user.email_change_requested"


async def _events_about(queue, object_id: str, routing_key: str) -> list[dict]:
    found: list[dict] = []

    async def collect():
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            event = json.loads(message.body)
            if event["user"]["objectId"] == object_id and message.routing_key == routing_key:
                found.append(event)
        return bool(found)

    await eventually(collect, timeout=15, interval=0.02, what=f"{routing_key} of {object_id}")
    return found


# --- update --------------------------------------------------------------------------------------


async def test_the_signed_in_user_updates_its_own_properties(api_for, unique_email, sessions):
    api = await api_for()
    me = await api.signed_in(unique_email(), name="Ann")
    status, body = await api.update(me["objectId"], {"name": "Anna", "age": 41}, token=me["user-token"])
    assert status == 200, body
    assert body["name"] == "Anna" and body["age"] == 41 and body["email"] == me["email"]
    assert body["objectId"] == me["objectId"] and body["updated"] >= me["updated"]
    assert "password" not in body and "user-token" not in body
    async with sessions() as session:
        column = await session.scalar(
            select(SchemaColumn).where(SchemaColumn.app_id == api.app.app_id, SchemaColumn.name_key == "age")
        )
    assert column is not None and column.type.value == "INT"  # a dynamic column, as register adds
    assert (await api.read_user(me["objectId"], token=me["user-token"]))[1]["name"] == "Anna"


async def test_the_sdk_s_whole_user_object_is_accepted_back(api_for, unique_email):
    """The SDK sends the user it holds, system properties and token included: they change nothing."""
    api = await api_for()
    me = await api.signed_in(unique_email())
    status, body = await api.update(me["objectId"], {**me, "name": "Bo"}, token=me["user-token"])
    assert status == 200, body
    assert body["name"] == "Bo" and body["created"] == me["created"] and body["userStatus"] == "ENABLED"


async def test_register_s_rules_apply_to_an_update(api_for, unique_email):
    api = await api_for(dynamic_schema=False)
    me = await api.signed_in(unique_email())
    object_id, token = me["objectId"], me["user-token"]
    status, body = await api.call(
        "PUT",
        f"/users/{object_id}",
        data='{"name": "a", "NAME": "b"}',
        headers={"Content-Type": "application/json", "user-token": token},
    )
    assert (status, body["code"]) == (400, 3043)
    cases = [
        ({"id": "x"}, 3039),
        ({"userStatus": "DISABLED"}, 3021),
        ({"objectId": "0A1B2C3D-0000-4000-8000-00000000ABCD"}, 3021),
        ({"___class": "Orders"}, 3021),
        ({"name": {"first": "A"}}, 3021),
        ({"name": 12}, 3021),
        ({"password": ""}, 3011),
        ({"email": ""}, 3013),
        ({"nickname": "x"}, 3010),
        ({"name": "x" * 501}, 8000),
        ({"password": "p" * 1025}, 8000),
        ({"email": "not-an-address"}, 3040),
    ]
    for body, code in cases:
        status, answer = await api.update(object_id, body, token=token)
        assert (status, answer["code"]) == (400, code), (body, answer)
    assert (await api.read_user(object_id, token=token))[1]["email"] == me["email"]  # nothing changed
    status, body = await api.call(
        "PUT", f"/users/{object_id}", data="[]", headers={"Content-Type": "application/json", "user-token": token}
    )
    assert (status, body["code"]) == (400, 3038)


async def test_the_dynamic_column_cap_holds_for_updates(api_for, unique_email):
    api = await api_for(max_dynamic_columns=1)
    me = await api.signed_in(unique_email())
    status, body = await api.update(me["objectId"], {"a1": 1, "a2": 2}, token=me["user-token"])
    assert (status, body["code"]) == (400, 9007)


async def test_a_required_column_may_be_left_out_but_not_emptied(api_for, unique_email, sessions):
    api = await api_for()
    me = await api.signed_in(unique_email(), city="Oslo")
    async with sessions() as session, session.begin():
        column = await session.scalar(
            select(SchemaColumn).where(SchemaColumn.app_id == api.app.app_id, SchemaColumn.name_key == "city")
        )
        column.required = True
    status, body = await api.update(me["objectId"], {"name": "N"}, token=me["user-token"])
    assert status == 200, body
    status, body = await api.update(me["objectId"], {"city": " "}, token=me["user-token"])
    assert (status, body["code"]) == (400, 3041)


async def test_who_may_update_and_read(api_for, unique_email):
    api = await api_for()
    me, other = await api.signed_in(unique_email()), await api.signed_in(unique_email())
    object_id = me["objectId"]
    # Another user's live token: 3029 (403), for an update and for a read.
    status, body = await api.update(object_id, {"name": "x"}, token=other["user-token"])
    assert (status, body["code"]) == (403, 3029)
    status, body = await api.read_user(object_id, token=other["user-token"])
    assert (status, body["code"]) == (403, 3029)
    # No token, an unknown one, a logged-out one: 3064 (401).
    for token in (None, "Unknown-token_of-43-characters-0123456789ab", "short"):
        assert (await api.update(object_id, {"name": "x"}, token=token))[1]["code"] == 3064
        assert (await api.read_user(object_id, token=token))[0] == 401
    assert (await api.logout(other["user-token"]))[0] == 200
    assert (await api.read_user(other["objectId"], token=other["user-token"]))[1]["code"] == 3064
    # Another app's token is no session of this app.
    second = await api_for()
    stranger = await second.signed_in(unique_email())
    assert (await api.read_user(object_id, token=stranger["user-token"]))[1]["code"] == 3064
    # The server key may read and update anyone; an unknown objectId is 9004.
    server = api.app.server_api_key
    status, body = await api.update(object_id, {"name": "By server"}, key=server)
    assert (status, body["name"]) == (200, "By server")
    status, body = await api.read_user(object_id, key=server)
    assert status == 200 and body["name"] == "By server" and "password" not in body
    for unknown in ("0A1B2C3D-0000-4000-8000-00000000ABCD", "nope"):
        assert (await api.read_user(unknown, key=server))[1]["code"] == 9004
    assert (await api.update("0A1B2C3D-0000-4000-8000-00000000ABCD", {"name": "x"}, key=server))[1]["code"] == 9004
    # An update's path takes an objectId (a GUID): any other word is no path of the API.
    assert await api.update("nope", {"name": "x"}, key=server) == (404, {"code": 9000, "message": "No such endpoint"})


async def test_a_password_change_ends_the_other_sessions_and_sends_the_notice(api_for, unique_email, event_queue):
    api = await api_for()
    email = unique_email()
    me = await api.signed_in(email, password="old-secret")
    _, elsewhere = await api.login(email, "old-secret")
    status, body = await api.update(me["objectId"], {"password": "new-secret"}, token=me["user-token"])
    assert status == 200 and "password" not in body
    assert await api.is_valid_token(me["user-token"]) == (200, True)  # the session that changed it
    assert await api.is_valid_token(elsewhere["user-token"]) == (200, False)
    assert (await api.login(email, "old-secret"))[1]["code"] == 3003
    assert (await api.login(email, "new-secret"))[0] == 200
    [event] = await _events_about(event_queue, me["objectId"], PASSWORD_CHANGED)
    assert "new-secret" not in json.dumps(event) and "old-secret" not in json.dumps(event)
    # With the server key every session ends.
    status, _ = await api.update(me["objectId"], {"password": "third-secret"}, key=api.app.server_api_key)
    assert status == 200
    assert await api.is_valid_token(me["user-token"]) == (200, False)


async def test_the_identity_stays_unique_across_a_change(api_for, unique_email):
    api = await api_for()
    me, other = await api.signed_in(unique_email()), await api.signed_in(unique_email())
    status, body = await api.update(me["objectId"], {"email": other["email"].upper()}, token=me["user-token"])
    assert (status, body["code"]) == (409, 3033)
    new = unique_email("new")
    status, body = await api.update(me["objectId"], {"email": new}, token=me["user-token"])
    assert (status, body["email"]) == (200, new)
    assert (await api.login(new, "s3cret"))[0] == 200
    assert (await api.login(me["email"], "s3cret"))[1]["code"] == 3003
    status, body = await api.register({"email": new.upper(), "password": "x"})
    assert (status, body["code"]) == (409, 3033)


async def test_two_users_racing_for_one_address_only_one_gets_it(api_for, unique_email):
    api = await api_for()
    racers = [await api.signed_in(unique_email()) for _ in range(4)]
    wanted = unique_email("wanted")
    answers = await asyncio.gather(
        *(api.update(user["objectId"], {"email": wanted}, token=user["user-token"]) for user in racers)
    )
    assert sorted(status for status, _ in answers) == [200, 409, 409, 409]
    assert {body["code"] for status, body in answers if status == 409} == {3033}


async def test_an_email_change_waits_for_the_new_address_to_be_confirmed(
    api_for, unique_email, sessions, event_queue, settings
):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    status, user = await api.register({"email": email, "password": "s3cret"})
    assert status == 200
    await api.set_status(user["objectId"], "ENABLED")  # confirmed
    status, me = await api.login(email, "s3cret")
    assert status == 200
    new = unique_email("new")
    status, body = await api.update(me["objectId"], {"email": new, "name": "Moved"}, token=me["user-token"])
    assert status == 200 and body["email"] == email and body["name"] == "Moved"  # the old address, meanwhile
    assert (await api.read_user(me["objectId"], token=me["user-token"]))[1]["email"] == email
    assert (await api.login(email, "s3cret"))[0] == 200
    assert (await api.login(new, "s3cret"))[1]["code"] == 3003
    [event] = await _events_about(event_queue, me["objectId"], EMAIL_CHANGE_REQUESTED)
    assert event["newEmail"] == new and event["user"]["email"] == email
    link = event["confirmation"]["url"]
    assert link.startswith(f"{settings.public_confirmation_url}/{api.app.app_id}/change-email/")
    async with sessions() as session:
        [stored] = list(
            await session.scalars(select(EmailChangeToken).where(EmailChangeToken.user_id == me["objectId"]))
        )
    assert stored.email == new and stored.identity_key == new.lower()
    assert stored.token_hash == hash_token(link.rsplit("/", 1)[1])
    # The same address again at once: the new mailbox's cool-down (9001); the current address in
    # another spelling is no change at all.
    status, body = await api.update(me["objectId"], {"email": new}, token=me["user-token"])
    assert (status, body["code"]) == (429, 9001)
    status, body = await api.update(me["objectId"], {"email": email.upper()}, token=me["user-token"])
    assert (status, body["email"]) == (200, email)


async def test_an_email_change_to_a_taken_address_is_3033_at_once(api_for, unique_email):
    api = await api_for(email_confirmation_required=True)
    first, second = unique_email(), unique_email()
    users = [(await api.register({"email": address, "password": "pw"}))[1] for address in (first, second)]
    status, body = await api.update(users[0]["objectId"], {"email": second.upper()}, key=api.app.server_api_key)
    assert (status, body["code"]) == (409, 3033)


async def test_a_guest_changes_properties_but_becomes_a_user_through_register(api_for):
    api = await api_for()
    _, guest = await api.guest()
    status, body = await api.update(guest["objectId"], {"nickname": "g"}, token=guest["user-token"])
    assert (status, body["nickname"], body["userStatus"]) == (200, "g", "GUEST")
    status, body = await api.update(guest["objectId"], {"password": "x"}, token=guest["user-token"])
    assert (status, body["code"]) == (400, 3021)
