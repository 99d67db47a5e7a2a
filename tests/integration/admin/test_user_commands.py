"""`userreg user create|list|set-status|sessions|end-sessions`: the registration service's rules,
from the command line."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import io
import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from tests.integration.admin.conftest import command_environment
from tests.support.polling import eventually
from userreg.registration.app import create_app as create_registration_app
from userreg.shared.db.models import ConfirmationToken
from userreg.shared.outbox import OutboxRelay
from userreg.shared.tokens import hash_token

USERREG = Path(sys.executable).parent / "userreg"


def test_create_gives_the_api_shape_without_the_password(userreg, create_user, new_app):
    app = new_app()
    assert userreg("schema", "add", app["appId"], "age", "--type", "INT").code == 0
    outcome = create_user(app["name"], "email=Ann@Example.com", "name=Ann", "age=41", "vip=true", password="wonderland")
    assert outcome.code == 0, outcome.err
    user = outcome.json
    assert user["email"] == "Ann@Example.com" and user["age"] == 41 and user["vip"] is True
    assert user["userStatus"] == "ENABLED" and user["___class"] == "Users"
    assert user["objectId"] == user["ownerId"]
    assert "password" not in user and "wonderland" not in outcome.out + outcome.err


def test_the_registration_rules_and_codes_apply(create_user, new_app):
    app = new_app(email_confirmation=True)
    assert create_user(app["appId"], "email=bob@example.com").code == 0
    cases = [
        (("email=carl@example.com",), "", 2, "3011"),  # an empty line: no password
        (("name=Nobody",), "x", 2, "3013"),  # the identity (email) is missing
        (("email=not-an-address",), "x", 2, "3040"),
        (("email=BOB@example.com",), "x", 1, "3033"),
        (("email=dan@example.com", "id=7"), "x", 2, "3039"),
        (("email=eve@example.com", "email=again@example.com"), "x", 2, "given twice"),
    ]
    for argv, password, code, message in cases:
        outcome = create_user(app["appId"], *argv, password=password)
        assert (outcome.code, message in outcome.err) == (code, True), (argv, outcome.err)
        assert "Traceback" not in outcome.err and outcome.out == ""


def test_an_operator_may_add_users_while_self_registration_is_off(userreg, create_user, new_app):
    app = new_app()
    assert userreg("app", "set", app["appId"], "registrationEnabled=false").code == 0
    assert create_user(app["appId"], "email=op@example.com").code == 0


@pytest.mark.parametrize("argument", ["password=secret", "Password=secret", "PASSWORD="])
def test_a_password_argument_is_refused(userreg, new_app, argument):
    app = new_app()
    outcome = userreg("user", "create", app["appId"], "email=pat@example.com", argument)
    assert outcome.code == 2 and outcome.out == ""
    assert "prompt" in outcome.err and "--password-stdin" in outcome.err
    assert "secret" not in outcome.err
    assert userreg("user", "list", app["appId"]).json == []


def test_without_a_terminal_the_password_must_come_with_password_stdin(userreg, new_app):
    app = new_app()  # pytest's standard input is no terminal
    outcome = userreg("user", "create", app["appId"], "email=tim@example.com")
    assert outcome.code == 2 and "--password-stdin" in outcome.err
    assert userreg("user", "list", app["appId"]).json == []


def test_on_a_terminal_the_password_is_typed_twice_at_a_prompt(userreg, new_app, monkeypatch):
    app = new_app()
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    typed = iter(["first", "second", "same", "same"])
    prompts = []
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or next(typed))
    differing = userreg("user", "create", app["appId"], "email=tia@example.com")
    assert differing.code == 2 and "differ" in differing.err
    created = userreg("user", "create", app["appId"], "email=tia@example.com")
    assert created.code == 0, created.err
    assert prompts == ["Password: ", "Password again: "] * 2


async def test_password_stdin_in_a_real_process_keeps_the_password_out_of_its_arguments(new_app, settings):
    app = await asyncio.to_thread(new_app)
    password = " correct horse battery staple "  # spaces are the password's; only the line break goes
    process = await asyncio.create_subprocess_exec(
        str(USERREG),
        "user",
        "create",
        app["appId"],
        "email=pia@example.com",
        "--password-stdin",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **command_environment(settings)},
    )
    arguments = (await asyncio.to_thread(Path(f"/proc/{process.pid}/cmdline").read_bytes)).split(b"\0")
    out, err = await process.communicate(f"{password}\n".encode())
    assert process.returncode == 0, err.decode()
    assert b"--password-stdin" in arguments and not any(b"horse" in argument for argument in arguments)
    assert json.loads(out)["email"] == "pia@example.com" and b"horse" not in out + err

    # The user logs in with exactly that password, through the registration API.
    async with TestClient(TestServer(create_registration_app(settings))) as client:

        async def log_in(secret: str) -> int:
            async with client.post(
                f"/{app['appId']}/{app['restApiKey']}/users/login",
                json={"login": "pia@example.com", "password": secret},
            ) as response:
                return response.status

        assert await log_in(password) == 200
        assert await log_in(password.strip()) == 401


async def test_a_created_user_gets_the_confirmation_email_event(
    create_user, new_app, sessions, engine, settings, topology, event_queue
):
    app = await asyncio.to_thread(new_app, True)
    outcome = await asyncio.to_thread(create_user, app["appId"], "email=pending@example.com", password="secret")
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


def test_list_shows_the_users_oldest_first_and_filters_by_status(userreg, create_user, new_app):
    app = new_app(email_confirmation=True)
    created = [create_user(app["appId"], f"email=u{n}@example.com").json for n in range(3)]
    listed = userreg("user", "list", app["appId"])
    assert [user["objectId"] for user in listed.json] == [user["objectId"] for user in created]
    assert all("password" not in user for user in listed.json)
    assert userreg("user", "set-status", app["appId"], created[1]["objectId"], "ENABLED").code == 0
    enabled = userreg("user", "list", app["appId"], "--status", "enabled").json
    assert [user["objectId"] for user in enabled] == [created[1]["objectId"]]
    assert len(userreg("user", "list", app["appId"], "--limit", "2").json) == 2
    assert userreg("user", "list", app["appId"], "--limit", "0").code == 2


def test_set_status_follows_the_allowed_transitions(userreg, create_user, new_app):
    app = new_app()
    object_id = create_user(app["appId"], "email=s@example.com").json["objectId"]
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


async def test_sessions_lists_a_users_sessions_without_their_tokens_and_end_sessions_ends_them(
    auserreg, create_user, new_app, settings
):
    app = await asyncio.to_thread(new_app)
    assert (await asyncio.to_thread(create_user, app["appId"], "email=sam@example.com", password="pw")).code == 0
    assert (await asyncio.to_thread(create_user, app["appId"], "email=kim@example.com", password="pw")).code == 0
    base = f"/{app['appId']}/{app['restApiKey']}/users"
    async with TestClient(TestServer(create_registration_app(settings))) as client:

        async def log_in(email: str) -> str:
            async with client.post(f"{base}/login", json={"login": email, "password": "pw"}) as response:
                assert response.status == 200
                return (await response.json())["user-token"]

        async def valid(token: str) -> bool:
            async with client.get(f"{base}/isvalidusertoken/{token}") as response:
                return await response.json()

        tokens = [await log_in("sam@example.com"), await log_in("sam@example.com")]
        kims = await log_in("kim@example.com")

        listed = await auserreg("user", "sessions", app["name"], "SAM@example.com")
        assert listed.code == 0, listed.err
        assert len(listed.json) == 2
        for session in listed.json:
            assert set(session) == {"created", "lastUsed", "expires", "expired"}
            created, expires = datetime.fromisoformat(session["created"]), datetime.fromisoformat(session["expires"])
            assert timedelta(days=29, hours=23) < expires - created <= timedelta(days=30, seconds=1)  # sessionTtl
            assert session["expired"] is False
        assert listed.json[0]["created"] <= listed.json[1]["created"]  # oldest first
        assert not any(token in listed.out + listed.err or hash_token(token).hex() in listed.out for token in tokens)

        ended = await auserreg("user", "end-sessions", app["appId"], "sam@example.com")
        assert (ended.code, ended.json) == (0, {"identity": "sam@example.com", "ended": 2})
        assert [await valid(token) for token in tokens] == [False, False]
        assert await valid(kims)  # another user's session is untouched
        assert (await auserreg("user", "sessions", app["appId"], "sam@example.com")).json == []
        assert (await auserreg("user", "end-sessions", app["appId"], "sam@example.com")).json["ended"] == 0


def test_sessions_of_an_unknown_identity_or_app_fail(userreg, new_app):
    app = new_app()
    for command in ("sessions", "end-sessions"):
        unknown = userreg("user", command, app["appId"], "nobody@example.com")
        assert unknown.code == 1 and "3104" in unknown.err and unknown.out == ""
        assert userreg("user", command, "no such app", "nobody@example.com").code == 1
