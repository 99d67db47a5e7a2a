"""`userreg user show|list (paging)|export|delete`: reading an app's users as the API represents
them (never a hash), page by page or all of them, and deleting one."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from userreg.admin import user_records
from userreg.registration.app import create_app as create_registration_app
from userreg.shared.db.models import SessionToken, User


def objectids(users: list[dict]) -> list[str]:
    return [user["objectId"] for user in users]


def test_show_finds_a_user_by_objectid_or_identity_without_its_hash(userreg, create_user, new_app):
    app = new_app()
    created = create_user(app["name"], "email=Ann@Example.com", "name=Ann", password="wonderland").json
    by_identity = userreg("user", "show", app["name"], "ANN@example.COM")
    assert by_identity.code == 0, by_identity.err
    shown = by_identity.json
    assert shown["objectId"] == created["objectId"] and shown["identity"] == "Ann@Example.com"
    assert shown["status"] == "ENABLED" and shown["lastLogin"] is None
    assert shown["sessions"] == {"count": 0, "lastUsed": None}
    assert shown["user"] == created  # the API's own representation
    assert int(datetime.fromisoformat(shown["created"]).timestamp() * 1000) == created["created"]
    by_object_id = userreg("user", "show", app["appId"], created["objectId"].lower())
    assert by_object_id.json == shown
    assert "wonderland" not in by_identity.out and "argon2" not in by_identity.out

    missing = userreg("user", "show", app["appId"], "nobody@example.com")
    assert (missing.code, missing.out) == (1, "") and "nobody@example.com" in missing.err
    other = new_app()
    assert userreg("user", "show", other["appId"], created["objectId"]).code == 1


async def test_show_counts_sessions_and_the_last_login(auserreg, create_user, new_app, settings):
    app = await asyncio.to_thread(new_app)
    assert (await asyncio.to_thread(create_user, app["appId"], "email=sam@example.com", password="pw")).code == 0
    async with TestClient(TestServer(create_registration_app(settings))) as client:
        for _ in range(2):
            async with client.post(
                f"/{app['appId']}/{app['restApiKey']}/users/login", json={"login": "sam@example.com", "password": "pw"}
            ) as response:
                assert response.status == 200
                token = (await response.json())["user-token"]
    shown = (await auserreg("user", "show", app["appId"], "sam@example.com")).json
    assert shown["sessions"]["count"] == 2 and shown["sessions"]["lastUsed"] is not None
    assert shown["lastLogin"] is not None and shown["user"]["lastLogin"] is not None
    assert token not in json.dumps(shown)


def test_list_pages_with_after_or_offset_in_a_stable_order(userreg, create_user, new_app):
    app = new_app()
    created = objectids([create_user(app["appId"], f"email=p{n}@example.com").json for n in range(5)])
    first = userreg("user", "list", app["appId"], "--limit", "2").json
    assert objectids(first) == created[:2]
    second = userreg("user", "list", app["appId"], "--limit", "2", "--after", first[-1]["objectId"]).json
    assert objectids(second) == created[2:4]
    last = userreg("user", "list", app["appId"], "--limit", "2", "--after", second[-1]["objectId"].lower()).json
    assert objectids(last) == created[4:]
    assert userreg("user", "list", app["appId"], "--after", created[-1]).json == []
    assert objectids(userreg("user", "list", app["appId"], "--offset", "3").json) == created[3:]
    assert objectids(userreg("user", "list", app["appId"], "--offset", "1", "--limit", "1").json) == created[1:2]

    both = userreg("user", "list", app["appId"], "--offset", "1", "--after", created[0])
    assert both.code == 2 and "not allowed with" in both.err
    assert userreg("user", "list", app["appId"], "--offset", "-1").code == 2
    assert userreg("user", "list", app["appId"], "--limit", "10001").code == 2
    gone = userreg("user", "list", app["appId"], "--after", "00000000-0000-0000-0000-000000000000")
    assert gone.code == 1 and "--offset" in gone.err
    assert userreg("user", "list", app["appId"], "--after", "not-an-id").code == 1


async def test_export_writes_every_user_as_one_json_line_in_batches(
    auserreg, create_user, new_app, sessions, monkeypatch
):
    app = await asyncio.to_thread(new_app)
    created = [
        (
            await asyncio.to_thread(create_user, app["appId"], f"email=e{n}@example.com", f"n={n}", password="sekrit")
        ).json
        for n in range(5)
    ]
    # Batches of two: the export pages through the app rather than reading it in one statement.
    monkeypatch.setattr(user_records, "EXPORT_BATCH", 2)
    exported = await auserreg("user", "export", app["name"])
    assert exported.code == 0, exported.err
    lines = exported.out.splitlines()
    assert [json.loads(line) for line in lines] == created
    assert "exported 5 user(s)" in exported.err
    async with sessions() as session:
        hashes = list(await session.scalars(select(User.password_hash).where(User.app_id == app["appId"])))
    assert hashes and not any(digest in exported.out for digest in hashes)
    assert "sekrit" not in exported.out and "password" not in exported.out

    empty = await asyncio.to_thread(new_app)
    nothing = await auserreg("user", "export", empty["appId"])
    assert (nothing.code, nothing.out) == (0, "") and "exported 0 user(s)" in nothing.err
    assert (await auserreg("user", "export", "no such app")).code == 1


async def test_delete_needs_yes_removes_the_user_and_its_sessions_and_is_audited(
    auserreg, create_user, new_app, sessions, settings
):
    app = await asyncio.to_thread(new_app)
    kept = (await asyncio.to_thread(create_user, app["appId"], "email=keep@example.com")).json
    gone = (await asyncio.to_thread(create_user, app["appId"], "email=gone@example.com", password="pw")).json
    login = {"login": "gone@example.com", "password": "pw"}
    async with (
        TestClient(TestServer(create_registration_app(settings))) as client,
        client.post(f"/{app['appId']}/{app['restApiKey']}/users/login", json=login) as response,
    ):
        assert response.status == 200

    unconfirmed = await auserreg("user", "delete", app["appId"], "GONE@example.com")
    assert unconfirmed.code == 2 and "--yes" in unconfirmed.err and gone["objectId"] in unconfirmed.err
    assert (await auserreg("user", "show", app["appId"], gone["objectId"])).code == 0

    deleted = await auserreg("user", "delete", app["appId"], "GONE@example.com", "--yes")
    assert deleted.code == 0, deleted.err
    assert deleted.json == {
        "appId": app["appId"],
        "objectId": gone["objectId"],
        "identity": "gone@example.com",
        "deleted": True,
    }
    assert (await auserreg("user", "show", app["appId"], gone["objectId"])).code == 1
    assert objectids((await auserreg("user", "list", app["appId"])).json) == [kept["objectId"]]
    async with sessions() as session:
        left = await session.scalar(select(func.count()).where(SessionToken.user_id == gone["objectId"]))
    assert left == 0

    entry = (await auserreg("audit", "list", "--app", app["appId"], "--limit", "1")).json[0]
    assert entry["action"] == "user.delete" and entry["actor"].startswith("cli:")
    assert entry["details"] == {"objectId": gone["objectId"], "identity": "gone@example.com"}

    again = await auserreg("user", "delete", app["appId"], gone["objectId"], "--yes")
    assert again.code == 1 and again.out == ""
