"""The email-change pages against the real database: the link a signed-in user's new address is
emailed (made here as registration makes it, with `shared.email_changes`), its page (a GET changes
nothing), the POST that makes the address the user's (and its identity), its refusals, and two
users racing for one address: only one gets it."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tests.integration.confirmation_web.support import data_page
from userreg.shared.db import App, EmailChangeToken, User, UserStatus
from userreg.shared.email_changes import request_email_change
from userreg.shared.tokens import new_guid

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends from our page
LINK = re.compile(r"^https?://[^/]+(?P<path>/(?P<app_id>[^/]+)/change-email/(?P<token>[^/]+))$")


async def fetch(http, url, method="GET", **kwargs):
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, await response.text()


@pytest.fixture
def make_user(sessions):
    async def make(app: App, *, status: UserStatus = UserStatus.ENABLED) -> User:
        email = f"old-{uuid.uuid4().hex[:10]}@example.com"
        user = User(
            object_id=new_guid(),
            app_id=app.app_id,
            identity_key=email,
            status=status,
            properties={"email": email, "name": "Eve", "blUserLocale": "en"},
            password_hash="x",
        )
        async with sessions() as session, session.begin():
            session.add(user)
        return user

    return make


@pytest.fixture
def make_change(sessions, settings):
    """`(path, token)` of a new email-change link that makes `email` the user's, made as registration
    makes it (its mailbox limits passed: a cool-down of 0)."""

    async def make(user: User, email: str) -> tuple[str, str]:
        async with sessions() as session, session.begin():
            app = await session.get(App, user.app_id)
            db_user = await session.get(User, user.object_id)
            event = await request_email_change(
                session, app, db_user, email, email.lower(), settings.public_confirmation_url, 0
            )
        match = LINK.match(event.confirmation.url)
        assert match and event.new_email == email, event
        return match["path"], match["token"]

    return make


async def _user(sessions, object_id: str) -> User:
    async with sessions() as session:
        return await session.get(User, object_id)


async def _links(sessions, object_id: str) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).where(EmailChangeToken.user_id == object_id))


@pytest.mark.usefixtures("server")
async def test_the_link_s_page_changes_nothing_and_its_post_makes_the_address_the_user_s(
    make_app, make_user, make_change, sessions, http, url
):
    app = await make_app("Change Co", email_confirmation_required=True)
    user = await make_user(app)
    new = f"new-{uuid.uuid4().hex[:10]}@example.com"
    path, token = await make_change(user, new)
    for method in ("GET", "HEAD", "GET"):
        status, html = await fetch(http, url(path), method)
        assert status == 200
    assert data_page(html) == "email-change-pending" and new in html and token in html
    assert (await _user(sessions, user.object_id)).properties["email"] == user.properties["email"]

    status, html = await fetch(
        http, url(f"/{app.app_id}/change-email"), "POST", data={"token": token}, headers=SAME_ORIGIN
    )
    assert (status, data_page(html)) == (200, "email-change-done") and new in html
    changed = await _user(sessions, user.object_id)
    assert changed.properties["email"] == new and changed.identity_key == new.lower()
    assert changed.properties["name"] == "Eve" and await _links(sessions, user.object_id) == 0
    # Single use.
    status, html = await fetch(
        http, url(f"/{app.app_id}/change-email"), "POST", data={"token": token}, headers=SAME_ORIGIN
    )
    assert (status, data_page(html)) == (404, "email-change-failed")


@pytest.mark.usefixtures("server")
async def test_a_newer_link_replaces_the_older_one(make_app, make_user, make_change, sessions, http, url):
    app = await make_app("Change Co", email_confirmation_required=True)
    user = await make_user(app)
    old_path, _ = await make_change(user, f"first-{uuid.uuid4().hex[:8]}@example.com")
    path, _ = await make_change(user, f"second-{uuid.uuid4().hex[:8]}@example.com")
    assert (await fetch(http, url(old_path)))[0] == 404
    assert (await fetch(http, url(path)))[0] == 200
    assert await _links(sessions, user.object_id) == 1


@pytest.mark.usefixtures("server")
async def test_refusals(make_app, make_user, make_change, sessions, http, url):
    app = await make_app("Change Co", email_confirmation_required=True)
    post_url = url(f"/{app.app_id}/change-email")
    user = await make_user(app)
    path, token = await make_change(user, f"new-{uuid.uuid4().hex[:8]}@example.com")
    # A cross-site POST changes nothing.
    status, html = await fetch(
        http,
        post_url,
        "POST",
        data={"token": token},
        headers={"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
    )
    assert (status, data_page(html)) == (403, "email-change-failed")
    # Malformed and unknown tokens, a link of another app.
    for bad in ("x", "A" * 43):
        assert (await fetch(http, post_url, "POST", data={"token": bad}, headers=SAME_ORIGIN))[0] == 404
    other = await make_app("Other Co")
    assert (await fetch(http, url(path.replace(app.app_id, other.app_id))))[0] == 404
    assert (await fetch(http, url(f"/{app.app_id}/change-email")))[0] == 404
    # Expired: 410, and the address stays.
    async with sessions() as session, session.begin():
        await session.execute(
            update(EmailChangeToken)
            .where(EmailChangeToken.user_id == user.object_id)
            .values(expires_at=func.now() - timedelta(seconds=1))
        )
    status, html = await fetch(http, post_url, "POST", data={"token": token}, headers=SAME_ORIGIN)
    assert (status, data_page(html)) == (410, "email-change-failed")
    # A disabled user's link: 403, disabling stays in force.
    disabled = await make_user(app, status=UserStatus.DISABLED)
    path, token = await make_change(disabled, f"new-{uuid.uuid4().hex[:8]}@example.com")
    assert (await fetch(http, url(path)))[0] == 403
    assert (await fetch(http, post_url, "POST", data={"token": token}, headers=SAME_ORIGIN))[0] == 403
    assert (await _user(sessions, user.object_id)).properties["email"] == user.properties["email"]


@pytest.mark.usefixtures("server")
async def test_two_users_confirming_one_address_only_one_gets_it(make_app, make_user, make_change, sessions, http, url):
    app = await make_app("Race Co", email_confirmation_required=True)
    wanted = f"wanted-{uuid.uuid4().hex[:8]}@example.com"
    users = [await make_user(app) for _ in range(3)]
    tokens = [(await make_change(user, wanted))[1] for user in users]
    post_url = url(f"/{app.app_id}/change-email")
    answers = await asyncio.gather(
        *(fetch(http, post_url, "POST", data={"token": token}, headers=SAME_ORIGIN) for token in tokens)
    )
    assert sorted(status for status, _ in answers) == [200, 409, 409]
    assert {data_page(html) for status, html in answers if status == 409} == {"email-change-failed"}
    owners = [user for user in users if (await _user(sessions, user.object_id)).identity_key == wanted]
    assert len(owners) == 1
    for user in users:
        assert await _links(sessions, user.object_id) == 0
