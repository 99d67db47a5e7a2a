"""The Apps pages: the list with user counts, creating an app (its keys shown once, in the answer
to the form, by whichever console replica answers it), rotating keys (a stale form rotates
nothing), deleting with the name typed again; every change with its audit entry, and app names shown
escaped."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select

from userreg.shared.db.models import App, AuditEntry, User, UserStatus
from userreg.shared.tokens import new_guid

KEY = r'id="{field}" type="text" readonly value="([0-9A-F-]{{36}})"'


def shown_keys(text: str) -> tuple[str, str] | None:
    rest = re.search(KEY.format(field="rest-api-key"), text)
    server = re.search(KEY.format(field="server-api-key"), text)
    return (rest[1], server[1]) if rest and server else None


async def entries_of(sessions, app_id: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(select(AuditEntry).where(AuditEntry.app_id == app_id).order_by(AuditEntry.id))
        )


def unique(name: str) -> str:
    return f"{name} {uuid.uuid4().hex[:8]}"


async def test_the_list_shows_apps_with_their_user_counts(client, make_app, sessions):
    app = await make_app(unique("Counted"))
    async with sessions() as session, session.begin():
        for number in range(3):
            session.add(
                User(
                    object_id=new_guid(),
                    app_id=app.app_id,
                    identity_key=f"u{number}@example.com",
                    properties={"email": f"u{number}@example.com"},
                    status=UserStatus.ENABLED,
                )
            )
    page = await client.get("/apps")
    assert page.status == 200
    row = re.search(
        rf"<tr>\s*<td><a href=\"/apps/{app.app_id}/registration\">{re.escape(app.name)}</a>.*?</tr>", page.text, re.S
    )
    assert row is not None
    assert '<td class="num">3</td>' in row[0]


async def test_creating_an_app_shows_its_keys_once_in_the_answer(client, sessions, operator):
    name = unique("Northwind")
    page = await client.post("/apps", {"name": name}, follow=False)
    assert page.status == 200 and 'data-page="app-keys"' in page.text, "answered at once, no redirect"
    assert page.headers["Cache-Control"] == "no-store"
    keys = shown_keys(page.text)
    assert keys is not None
    async with sessions() as session:
        app = await session.scalar(select(App).where(App.name == name))
    assert (app.rest_api_key, app.server_api_key) == keys
    assert "shown only this once" in page.text

    again = await client.get(f"/apps/{app.app_id}/keys")
    assert again.status == 200 and shown_keys(again.text) is None
    assert app.rest_api_key not in again.text and app.server_api_key not in again.text
    listed = await client.get("/apps")
    assert app.rest_api_key not in listed.text and app.server_api_key not in listed.text
    # Posting the form again (a reload) makes no second app and shows no keys.
    repeated = await client.post("/apps", {"name": name})
    assert repeated.status == 400 and shown_keys(repeated.text) is None

    [entry] = await entries_of(sessions, app.app_id)
    assert (entry.actor, entry.action, entry.details) == (f"operator:{operator.email}", "app.create", {"name": name})


async def test_keys_are_shown_by_whichever_console_answers_and_kept_by_none(
    start_console, http_client_for, make_app, sessions
):
    """Two replicas: the one that rotates shows the keys; neither holds them for a later page."""
    app = await make_app(unique("Replicated"))
    first, second = [await http_client_for(await start_console()) for _ in range(2)]
    form = await first.get(f"/apps/{app.app_id}/keys")
    stamp = re.search(r'name="keys_stamp" value="([0-9a-f]{64})"', form.text)[1]
    rotated = await second.post(f"/apps/{app.app_id}/keys", {"keys_stamp": stamp})
    assert rotated.status == 409, "a stamp is its own session's"
    page = await first.post(f"/apps/{app.app_id}/keys", {"keys_stamp": stamp}, follow=False)
    keys = shown_keys(page.text)
    async with sessions() as session:
        stored = await session.get(App, app.app_id)
    assert page.status == 200 and keys == (stored.rest_api_key, stored.server_api_key)
    for client in (first, second):
        later = await client.get(f"/apps/{app.app_id}/keys")
        assert stored.rest_api_key not in later.text and stored.server_api_key not in later.text


async def test_an_app_name_is_checked(client, make_app):
    page = await client.post("/apps", {"name": "   "})
    assert page.status == 400 and "must not be empty" in page.text
    taken = await make_app(unique("Taken"))
    page = await client.post("/apps", {"name": taken.name})
    assert page.status == 400 and "exists already" in page.text


async def test_an_app_name_with_markup_is_shown_escaped(client, sessions):
    name = f"<script>alert('{uuid.uuid4().hex[:6]}')</script>"
    page = await client.post("/apps", {"name": name})
    assert page.status == 200
    assert name not in page.text
    assert "&lt;script&gt;alert(" in page.text
    listed = await client.get("/apps")
    assert name not in listed.text and "&lt;script&gt;alert(" in listed.text


async def test_rotating_keys_shows_the_new_keys_once(client, make_app, sessions):
    app = await make_app(unique("Rotated"))
    form = await client.get(f"/apps/{app.app_id}/keys")
    assert "Rotate the keys of" in form.text and shown_keys(form.text) is None
    assert app.rest_api_key not in form.text and app.server_api_key not in form.text
    stamp = re.search(r'name="keys_stamp" value="([0-9a-f]{64})"', form.text)[1]
    page = await client.post(f"/apps/{app.app_id}/keys", {"keys_stamp": stamp}, follow=False)
    assert page.status == 200 and page.headers["Cache-Control"] == "no-store"
    keys = shown_keys(page.text)
    assert keys is not None and keys != (app.rest_api_key, app.server_api_key)
    async with sessions() as session:
        stored = await session.get(App, app.app_id)
    assert (stored.rest_api_key, stored.server_api_key) == keys
    assert shown_keys((await client.get(f"/apps/{app.app_id}/keys")).text) is None

    # The same form again (a reload of the answer, an old tab) rotates nothing.
    repeated = await client.post(f"/apps/{app.app_id}/keys", {"keys_stamp": stamp})
    assert repeated.status == 409 and "Nothing was rotated" in repeated.text and shown_keys(repeated.text) is None
    unstamped = await client.post(f"/apps/{app.app_id}/keys")
    assert unstamped.status == 409
    async with sessions() as session:
        assert (await session.get(App, app.app_id)).rest_api_key == keys[0]
    [entry] = await entries_of(sessions, app.app_id)
    assert entry.action == "app.rotate-keys"
    assert keys[0] not in str(entry.details) and keys[1] not in str(entry.details)


async def test_deleting_needs_the_name_typed_again(client, make_app, sessions):
    app = await make_app(unique("Doomed"))
    page = await client.post(f"/apps/{app.app_id}/delete", {"confirm_name": "doomed"})
    assert page.status == 400 and "Nothing was deleted" in page.text
    async with sessions() as session:
        assert await session.get(App, app.app_id) is not None

    page = await client.post(f"/apps/{app.app_id}/delete", {"confirm_name": app.name})
    assert page.status == 200 and page.url.endswith("/apps?notice=deleted")
    assert "The app was deleted." in page.text
    async with sessions() as session:
        assert await session.get(App, app.app_id) is None
    [entry] = await entries_of(sessions, app.app_id)
    assert (entry.action, entry.details) == ("app.delete", {"name": app.name})


async def test_an_unknown_app_is_not_found(client):
    for path in ("/apps/NO-SUCH-APP/keys", "/apps/NO-SUCH-APP/delete", "/apps/NO-SUCH-APP/registration"):
        page = await client.get(path)
        assert page.status == 404 and "Not found" in page.text
    page = await client.post("/apps/NO-SUCH-APP/keys")
    assert page.status == 404
