"""Every change made with `userreg` leaves its audit entry (who, what, which app; never a secret),
and `userreg audit list` shows them newest first. Also the commands the console shares:
`app rotate-keys` and `app delete`."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.integration.admin.conftest import park, unique_name
from userreg.registration.app import create_app as create_registration_app
from userreg.shared.events import USER_REGISTERED, Event, EventUser

PASSWORD = "wonderland rabbit hole"
INVALID_APPLICATION, INVALID_LOGIN = 2002, 3003


def entries_of(userreg, app_id: str) -> list[dict]:
    outcome = userreg("audit", "list", "--app", app_id)
    assert outcome.code == 0, outcome.err
    return outcome.json


def actions(entries: list[dict]) -> list[str]:
    return [entry["action"] for entry in entries]


def assert_no_secret(entries: list[dict], *secrets: str) -> None:
    text = json.dumps(entries)
    for secret in secrets:
        assert secret not in text
    assert "$argon2" not in text


@pytest.fixture
def files(tmp_path):
    def write(name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return str(path)

    return write


def test_app_create_and_set_record_who_changed_what(userreg, new_app):
    app = new_app(email_confirmation=True)
    assert (
        userreg(
            "app",
            "set",
            app["appId"],
            "registrationEnabled=false",
            "confirmationLinkTtl=600",
            "dynamicSchema=true",
            "beforeRegisterWebhookUrl=https://hook:s3cret@example.com/x",
        ).code
        == 0
    )
    entries = entries_of(userreg, app["appId"])
    # Newest first; one entry per setting that changed (dynamicSchema was true already).
    assert actions(entries) == ["app.set"] * 3 + ["app.create"]
    created = entries[-1]
    assert created["details"] == {"name": app["name"], "emailConfirmationRequired": True}
    assert created["actor"].startswith("cli:") and created["appId"] == app["appId"]
    changes = {entry["details"]["setting"]: (entry["details"]["old"], entry["details"]["new"]) for entry in entries[:3]}
    assert changes == {
        "registrationEnabled": (True, False),
        "confirmationLinkTtl": (86400, 600),
        "beforeRegisterWebhookUrl": (None, "https://hook:***@example.com/x"),
    }
    assert_no_secret(entries, app["restApiKey"], app["serverApiKey"], "s3cret")


def test_schema_changes_are_recorded(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "nickname", "--type", "STRING", "--max-length", "40").code == 0
    assert userreg("schema", "set-identity", app_id, "nickname").code == 0
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    assert userreg("schema", "remove", app_id, "age").code == 0
    entries = entries_of(userreg, app_id)
    assert actions(entries)[:4] == ["schema.remove", "schema.add", "schema.set-identity", "schema.add"]
    assert entries[0]["details"] == {"column": "age", "usersChanged": 0}
    assert entries[2]["details"] == {"column": "nickname"}
    assert entries[3]["details"]["column"] == {
        "name": "nickname",
        "type": "STRING",
        "required": False,
        "maxLength": 40,
        "identity": False,
        "builtIn": False,
    }


def test_template_set_and_reset_are_recorded_without_the_template_text(userreg, new_app, files):
    app_id = new_app()["appId"]
    subject = files("subject.txt", "Secretive subject {{ app_name }}")
    assert userreg("template", "set", app_id, "confirmation", "--locale", "de", "--subject-file", subject).code == 0
    assert userreg("template", "reset", app_id, "confirmation", "--locale", "de").code == 0
    reset, stored = entries_of(userreg, app_id)[:2]
    assert (stored["action"], stored["details"]) == (
        "template.set",
        {"kind": "email", "name": "confirmation", "locale": "de", "parts": ["subject"]},
    )
    assert (reset["action"], reset["details"]) == (
        "template.reset",
        {"kind": "email", "name": "confirmation", "locale": "de", "removed": True},
    )
    assert "Secretive" not in json.dumps([stored, reset])


def test_user_changes_are_recorded_without_the_password(userreg, new_app, monkeypatch):
    app = new_app()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    created = userreg("user", "create", app["appId"], "email=ann@example.com", "--password-stdin")
    assert created.code == 0, created.err
    object_id = created.json["objectId"]
    assert userreg("user", "set-status", app["appId"], object_id, "disabled").code == 0
    assert userreg("user", "end-sessions", app["appId"], "ann@example.com").code == 0
    entries = entries_of(userreg, app["appId"])
    assert actions(entries)[:3] == ["user.end-sessions", "user.set-status", "user.create"]
    ended, status, made = entries[:3]
    assert made["details"] == {"objectId": object_id, "identity": "ann@example.com"}
    assert status["details"] == {"objectId": object_id, "userStatus": "DISABLED", "changed": True}
    assert ended["details"] == {"identity": "ann@example.com", "ended": 0}
    assert all(entry["actor"] == made["actor"] and entry["appId"] == app["appId"] for entry in entries)
    assert_no_secret(entries, PASSWORD)


def test_a_refused_change_leaves_no_entry(userreg, new_app):
    app_id = new_app()["appId"]
    assert userreg("app", "set", app_id, "registrationEnabled=false", "confirmationLinkTtl=soon").code == 2
    assert userreg("schema", "add", app_id, "email", "--type", "STRING").code == 1
    assert actions(entries_of(userreg, app_id)) == ["app.create"]


async def test_rotate_keys_prints_the_new_keys_once_and_the_old_ones_stop_working(settings, auserreg, new_app):
    app = await asyncio.to_thread(new_app)
    rotated = await auserreg("app", "rotate-keys", app["name"])
    assert rotated.code == 0, rotated.err
    keys = rotated.json
    assert keys["appId"] == app["appId"] and keys["name"] == app["name"]
    assert {keys["restApiKey"], keys["serverApiKey"]}.isdisjoint({app["restApiKey"], app["serverApiKey"]})
    assert keys["restApiKey"] != keys["serverApiKey"]
    shown = (await auserreg("app", "show", app["appId"], "--show-server-key")).json
    assert (shown["restApiKey"], shown["serverApiKey"]) == (keys["restApiKey"], keys["serverApiKey"])
    assert (await auserreg("app", "show", app["appId"])).json["serverApiKey"] == "***"

    async with TestClient(TestServer(create_registration_app(settings))) as client:

        async def login_code(key: str) -> int:
            async with client.post(
                f"/{app['appId']}/{key}/users/login", json={"login": "nobody@example.com", "password": "x"}
            ) as response:
                return (await response.json())["code"]

        assert await login_code(app["restApiKey"]) == INVALID_APPLICATION
        # The new key gets as far as the login itself (an unknown user).
        assert await login_code(keys["restApiKey"]) == INVALID_LOGIN

    (entry,) = [
        entry
        for entry in (await auserreg("audit", "list", "--app", app["appId"])).json
        if entry["action"] == "app.rotate-keys"
    ]
    assert entry["details"] == {"name": app["name"]}
    assert_no_secret([entry], keys["restApiKey"], keys["serverApiKey"])


def test_delete_needs_the_name_typed_again_and_its_entries_outlive_the_app(userreg, new_app, monkeypatch):
    app = new_app()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    assert userreg("user", "create", app["appId"], "email=bob@example.com", "--password-stdin").code == 0

    wrong = userreg("app", "delete", app["appId"], "--confirm", app["name"].upper())
    assert wrong.code == 2 and "nothing deleted" in wrong.err
    assert userreg("app", "show", app["appId"]).code == 0
    assert userreg("app", "delete", app["appId"]).code == 2  # --confirm is required

    deleted = userreg("app", "delete", app["name"], "--confirm", app["name"])
    assert deleted.code == 0, deleted.err
    assert deleted.json == {"deleted": app["appId"], "name": app["name"], "users": 1}
    assert userreg("app", "show", app["appId"]).code == 1

    # The appId of a deleted app still finds its entries, in any case.
    entries = entries_of(userreg, app["appId"].lower())
    assert actions(entries) == ["app.delete", "user.create", "app.create"]
    assert entries[0]["details"] == {"name": app["name"], "users": 1}
    assert userreg("audit", "list", "--app", unique_name("missing")).code == 1


async def test_dead_letter_replays_are_recorded(settings, own_topology, make_app, auserreg):
    app = await make_app()
    event = Event(
        type=USER_REGISTERED,
        appId=app.app_id,
        user=EventUser(
            objectId=str(uuid.uuid4()).upper(),
            identityProperty="email",
            identity="dead@example.com",
            email="dead@example.com",
        ),
    )
    await park(settings, own_topology, event)
    assert (await auserreg("dead-letters", "replay", "--event-id", event.id)).json == {"replayed": 1}
    entries = (await auserreg("audit", "list", "--limit", "1000")).json
    (entry,) = [
        entry
        for entry in entries
        if entry["action"] == "dead-letters.replay" and entry["details"]["eventIds"] == [event.id]
    ]
    assert entry["details"] == {"replayed": 1, "eventIds": [event.id]} and entry["actor"].startswith("cli:")


def test_audit_list_pages_newest_first(userreg, new_app):
    app_id = new_app()["appId"]
    for ttl in (600, 700, 800, 900):
        assert userreg("app", "set", app_id, f"confirmationLinkTtl={ttl}").code == 0
    everything = entries_of(userreg, app_id)
    ids = [entry["id"] for entry in everything]
    assert ids == sorted(ids, reverse=True) and len(ids) == 5
    assert [entry["details"].get("new") for entry in everything[:4]] == [900, 800, 700, 600]
    first = userreg("audit", "list", "--app", app_id, "--limit", "2").json
    second = userreg("audit", "list", "--app", app_id, "--limit", "2", "--before", first[-1]["id"]).json
    assert [entry["id"] for entry in first + second] == ids[:4]
    assert set(everything[0]) == {"id", "at", "actor", "action", "appId", "details"}
    for bad in (("--limit", "0"), ("--before", "0")):
        outcome = userreg("audit", "list", *bad)
        assert outcome.code == 2 and outcome.out == ""
