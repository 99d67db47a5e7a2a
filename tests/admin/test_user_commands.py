"""`userreg user create|list|set-status`: the registration service's rules, from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import json

from sqlalchemy import func, select

from tests.support.polling import eventually
from userreg.shared.db.models import ConfirmationToken
from userreg.shared.outbox import OutboxRelay


def test_create_gives_the_api_shape_without_the_password(userreg, new_app):
    app = new_app()
    assert userreg("schema", "add", app["appId"], "age", "--type", "INT").code == 0
    outcome = userreg("user", "create", app["name"], "email=Ann@Example.com", "password=wonderland",
                      "name=Ann", "age=41", "vip=true")
    assert outcome.code == 0, outcome.err
    user = outcome.json
    assert user["email"] == "Ann@Example.com" and user["age"] == 41 and user["vip"] is True
    assert user["userStatus"] == "ENABLED" and user["___class"] == "Users"
    assert user["objectId"] == user["ownerId"]
    assert "password" not in user and "wonderland" not in outcome.out + outcome.err


def test_the_registration_rules_and_codes_apply(userreg, new_app):
    app = new_app(email_confirmation=True)
    assert userreg("user", "create", app["appId"], "email=bob@example.com", "password=x").code == 0
    cases = [
        (("email=carl@example.com",), 2, "3011"),
        (("password=x",), 2, "3013"),  # the identity (email) is missing
        (("email=not-an-address", "password=x"), 2, "3040"),
        (("email=BOB@example.com", "password=x"), 1, "3033"),
        (("email=dan@example.com", "password=x", "id=7"), 2, "3039"),
        (("email=eve@example.com", "password=x", "email=again@example.com"), 2, "given twice"),
    ]
    for argv, code, message in cases:
        outcome = userreg("user", "create", app["appId"], *argv)
        assert (outcome.code, message in outcome.err) == (code, True), (argv, outcome.err)
        assert "Traceback" not in outcome.err and outcome.out == ""


def test_an_operator_may_add_users_while_self_registration_is_off(userreg, new_app):
    app = new_app()
    assert userreg("app", "set", app["appId"], "registrationEnabled=false").code == 0
    assert userreg("user", "create", app["appId"], "email=op@example.com", "password=x").code == 0


async def test_a_created_user_gets_the_confirmation_email_event(auserreg, new_app, sessions, engine, settings,
                                                                 topology, event_queue):
    app = await asyncio.to_thread(new_app, True)
    outcome = await auserreg("user", "create", app["appId"], "email=pending@example.com", "password=secret")
    assert outcome.code == 0, outcome.err
    user = outcome.json
    assert user["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    async with sessions() as session:
        tokens = await session.scalar(select(func.count()).where(ConfirmationToken.user_id == user["objectId"]))
    assert tokens == 1

    # The event waits in the outbox until a relay (a running registration service's) publishes it.
    relay = asyncio.create_task(OutboxRelay(engine, settings.amqp_dsn, topology, poll_seconds=0.5).run())
    try:
        async def registered():
            message = await event_queue.get(fail=False, no_ack=True)
            if message is None:
                return None
            event = json.loads(message.body)
            return event if event["user"]["objectId"] == user["objectId"] else None

        event = await eventually(registered, timeout=15, what="the user.registered event")
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay
    assert event["type"] == "user.registered"
    assert event["confirmation"]["url"].startswith(f"{settings.public_confirmation_url}/{app['appId']}/confirm/")
    assert "secret" not in json.dumps(event)


def test_list_shows_the_users_oldest_first_and_filters_by_status(userreg, new_app):
    app = new_app(email_confirmation=True)
    created = [userreg("user", "create", app["appId"], f"email=u{n}@example.com", "password=pw").json
               for n in range(3)]
    listed = userreg("user", "list", app["appId"])
    assert [user["objectId"] for user in listed.json] == [user["objectId"] for user in created]
    assert all("password" not in user for user in listed.json)
    assert userreg("user", "set-status", app["appId"], created[1]["objectId"], "ENABLED").code == 0
    enabled = userreg("user", "list", app["appId"], "--status", "enabled").json
    assert [user["objectId"] for user in enabled] == [created[1]["objectId"]]
    assert len(userreg("user", "list", app["appId"], "--limit", "2").json) == 2
    assert userreg("user", "list", app["appId"], "--limit", "0").code == 2


def test_set_status_follows_the_allowed_transitions(userreg, new_app):
    app = new_app()
    object_id = userreg("user", "create", app["appId"], "email=s@example.com", "password=pw").json["objectId"]
    disabled = userreg("user", "set-status", app["appId"], object_id.lower(), "disabled")
    assert disabled.json == {"objectId": object_id, "userStatus": "DISABLED", "changed": True}
    assert userreg("user", "set-status", app["appId"], object_id, "DISABLED").json["changed"] is False
    assert userreg("user", "list", app["appId"]).json[0]["userStatus"] == "DISABLED"
    assert userreg("user", "set-status", app["appId"], object_id, "ENABLED").json["changed"] is True

    bad = userreg("user", "set-status", app["appId"], object_id, "GUEST")
    assert bad.code == 2 and "ENABLED or DISABLED" in bad.err
    unknown = userreg("user", "set-status", app["appId"], "00000000-0000-0000-0000-000000000000", "ENABLED")
    assert unknown.code == 1 and "9004" in unknown.err
    other_app = new_app()
    assert userreg("user", "set-status", other_app["appId"], object_id, "DISABLED").code == 1
