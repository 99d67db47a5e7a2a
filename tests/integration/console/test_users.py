"""The Users pages: search by identity, paging (25 a page), one user's details (never a token or a
hash), creating a user through the registration's own service layer (the confirmation email's
event included), enable/disable, resend the confirmation email, delete after a confirmation page;
refusals shown with their message; audit entries; CSRF refused; users' data shown escaped. And the
registration service's new delete operation on its own."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from userreg.registration.operations import ApiError, open_registrar
from userreg.shared.db.models import AuditEntry, EmailChangeToken, OutboxEvent, SessionToken, User, UserStatus
from userreg.shared.tokens import hash_token, new_guid, new_token

PASSWORD = "a long enough password"


async def add_user(
    sessions,
    app,
    email: str,
    *,
    status: UserStatus = UserStatus.ENABLED,
    created_at: datetime | None = None,
    **properties,
) -> str:
    object_id = new_guid()
    async with sessions() as session, session.begin():
        session.add(
            User(
                object_id=object_id,
                app_id=app.app_id,
                identity_key=email.lower(),
                properties={"email": email, **properties},
                status=status,
                created_at=created_at or datetime.now(UTC),
                password_hash="$argon2id$secret-hash",
            )
        )
    return object_id


async def add_session(sessions, app, object_id: str, last_used: datetime) -> str:
    token = new_token()
    async with sessions() as session, session.begin():
        session.add(
            SessionToken(
                token_hash=hash_token(token),
                app_id=app.app_id,
                user_id=object_id,
                created_at=last_used - timedelta(hours=1),
                last_used_at=last_used,
            )
        )
    return token


async def audit_of(sessions, app_id: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(select(AuditEntry).where(AuditEntry.app_id == app_id).order_by(AuditEntry.id))
        )


async def events_of(sessions, object_id: str) -> list[dict]:
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(OutboxEvent.payload["user"]["objectId"].astext == object_id)
            .order_by(OutboxEvent.id)
        )
        return [row.payload for row in rows]


def listed_identities(text: str) -> list[str]:
    return re.findall(r'<td><a href="/apps/[^/]+/users/[0-9A-F-]{36}">([^<]+)</a></td>', text)


async def test_users_are_listed_newest_first_25_a_page(client, make_app, sessions):
    app = await make_app()
    start = datetime(2030, 1, 1, tzinfo=UTC)
    for number in range(30):
        await add_user(sessions, app, f"user{number:02d}@example.com", created_at=start + timedelta(minutes=number))
    first = await client.get(f"/apps/{app.app_id}/users")
    assert first.status == 200 and 'data-page="users"' in first.text
    shown = listed_identities(first.text)
    assert len(shown) == 25 and shown[0] == "user29@example.com" and shown[-1] == "user05@example.com"
    assert "Page 1 of 2" in first.text and "page=2" in first.text
    second = await client.get(f"/apps/{app.app_id}/users?page=2")
    assert listed_identities(second.text) == [f"user{number:02d}@example.com" for number in range(4, -1, -1)]
    assert "Page 2 of 2" in second.text and "Next page" not in second.text


async def test_search_by_identity_prefix_case_insensitively(client, make_app, sessions):
    app = await make_app()
    for email in ("Ann.Smith@example.com", "anna@example.com", "bob@example.com", "ann_x@example.com"):
        await add_user(sessions, app, email)
    page = await client.get(f"/apps/{app.app_id}/users?q=ANN")
    assert sorted(listed_identities(page.text)) == ["Ann.Smith@example.com", "ann_x@example.com", "anna@example.com"]
    # LIKE's wildcards are taken literally.
    assert listed_identities((await client.get(f"/apps/{app.app_id}/users?q=ann_")).text) == ["ann_x@example.com"]
    assert listed_identities((await client.get(f"/apps/{app.app_id}/users?q=%25")).text) == []
    assert "No user matches." in (await client.get(f"/apps/{app.app_id}/users?q=zed")).text


async def test_one_user_is_shown_without_a_token_or_hash(client, make_app, sessions):
    app = await make_app()
    object_id = await add_user(sessions, app, "ann@example.com", name="<script>alert(1)</script>", age=42)
    used = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    token = await add_session(sessions, app, object_id, used)
    await add_session(sessions, app, object_id, used - timedelta(days=1))
    page = await client.get(f"/apps/{app.app_id}/users/{object_id}")
    assert page.status == 200 and 'data-page="user"' in page.text
    assert object_id in page.text and "Enabled" in page.text and "ann@example.com" in page.text
    assert "<dt>Sessions</dt><dd>2</dd>" in page.text and "2030-05-06 07:08:09 UTC" in page.text
    assert '<code>age</code></dt><dd class="details">42</dd>' in page.text
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert token not in page.text and hash_token(token).hex() not in page.text and "argon2" not in page.text
    assert (await client.get(f"/apps/{app.app_id}/users/{new_guid()}")).status == 404
    assert (await client.get(f"/apps/{app.app_id}/users/not-an-id")).status == 404
    assert "not yet confirmed" not in page.text


async def test_a_new_email_waiting_for_its_link_is_shown_beside_the_current_one(client, make_app, sessions):
    """As the API answers meanwhile: the user keeps its address until the emailed link is opened."""
    app = await make_app(email_confirmation_required=True)
    object_id = await add_user(sessions, app, "old@example.com")
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with sessions() as session, session.begin():
        session.add(
            EmailChangeToken(
                token_hash=hash_token(new_token()),
                app_id=app.app_id,
                user_id=object_id,
                email="<b>new</b>@example.com",
                identity_key="<b>new</b>@example.com",
                expires_at=expires,
            )
        )
    page = (await client.get(f"/apps/{app.app_id}/users/{object_id}")).text
    assert "old@example.com" in page
    assert (
        "<dt>New email, not yet confirmed</dt><dd>&lt;b&gt;new&lt;/b&gt;@example.com "
        "(its link expires 2030-01-02 03:04:05 UTC)</dd>"
    ) in page


async def test_creating_a_user_goes_through_the_registration_and_sends_the_confirmation(client, make_app, sessions):
    app = await make_app(email_confirmation_required=True)
    await client.post(f"/apps/{app.app_id}/schema", {"name": "age", "type": "INT"})
    form = await client.get(f"/apps/{app.app_id}/users/new")
    assert form.status == 200 and 'data-page="user-new"' in form.text and 'name="p.age"' in form.text
    page = await client.post(
        f"/apps/{app.app_id}/users",
        {"p.email": "New.User@example.com", "p.name": "New", "p.age": "33", "password": PASSWORD},
    )
    assert page.status == 200 and "a confirmation email is on its way" in page.text
    assert "Confirmation pending" in page.text
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.app_id == app.app_id))
    assert user.properties["age"] == 33 and user.status is UserStatus.EMAIL_CONFIRMATION_PENDING
    assert user.identity_key == "new.user@example.com" and user.password_hash.startswith("$argon2id$")
    [event] = await events_of(sessions, user.object_id)
    assert event["type"] == "user.registered" and event["confirmation"]["url"].startswith(
        "http://confirm.test.invalid/"
    )
    [entry] = [entry for entry in await audit_of(sessions, app.app_id) if entry.action == "user.create"]
    assert entry.details["userId"] == user.object_id and PASSWORD not in str(entry.details)


async def test_refusals_of_the_registration_are_shown_and_nothing_is_created(client, make_app, sessions):
    app = await make_app()
    await client.post(f"/apps/{app.app_id}/schema", {"name": "age", "type": "INT"})
    await add_user(sessions, app, "taken@example.com")
    taken = await client.post(f"/apps/{app.app_id}/users", {"p.email": "TAKEN@example.com", "password": PASSWORD})
    assert taken.status == 400 and "(code 3033)" in taken.text
    assert 'value="TAKEN@example.com"' in taken.text and PASSWORD not in taken.text
    typed = await client.post(
        f"/apps/{app.app_id}/users", {"p.email": "x@example.com", "p.age": "old", "password": PASSWORD}
    )
    assert typed.status == 400 and "age must be a whole number" in typed.text and 'aria-invalid="true"' in typed.text
    no_password = await client.post(f"/apps/{app.app_id}/users", {"p.email": "y@example.com"})
    assert no_password.status == 400 and "(code 3011)" in no_password.text
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User).where(User.app_id == app.app_id)) == 1


async def test_disabling_ends_the_sessions_and_enabling_brings_the_user_back(client, make_app, sessions):
    app = await make_app()
    object_id = await add_user(sessions, app, "ann@example.com")
    await add_session(sessions, app, object_id, datetime.now(UTC))
    page = await client.post(f"/apps/{app.app_id}/users/{object_id}/status", {"status": "DISABLED"})
    assert page.status == 200 and "The user is disabled" in page.text
    async with sessions() as session:
        assert await session.scalar(select(User.status).where(User.object_id == object_id)) is UserStatus.DISABLED
        assert (
            await session.scalar(
                select(func.count()).select_from(SessionToken).where(SessionToken.user_id == object_id)
            )
            == 0
        )
    again = await client.post(f"/apps/{app.app_id}/users/{object_id}/status", {"status": "DISABLED"})
    assert "already had that status" in again.text
    await client.post(f"/apps/{app.app_id}/users/{object_id}/status", {"status": "ENABLED"})
    async with sessions() as session:
        assert await session.scalar(select(User.status).where(User.object_id == object_id)) is UserStatus.ENABLED
    guest = await add_user(sessions, app, "guest@example.com", status=UserStatus.GUEST)
    refused = await client.post(f"/apps/{app.app_id}/users/{guest}/status", {"status": "DISABLED"})
    assert refused.status == 409 and "(code 9006)" in refused.text
    actions = [(entry.action, entry.details.get("status")) for entry in await audit_of(sessions, app.app_id)]
    assert actions == [("user.set-status", "DISABLED"), ("user.set-status", "ENABLED")]


async def test_resending_the_confirmation_email(client, make_app, sessions):
    app = await make_app(email_confirmation_required=True)
    object_id = await add_user(sessions, app, "pending@example.com", status=UserStatus.EMAIL_CONFIRMATION_PENDING)
    page = await client.get(f"/apps/{app.app_id}/users/{object_id}")
    assert "Resend confirmation email" in page.text
    page = await client.post(f"/apps/{app.app_id}/users/{object_id}/resend")
    assert page.status == 200 and "A new confirmation email is on its way." in page.text
    [event] = await events_of(sessions, object_id)
    assert event["type"] == "user.confirmation_requested" and event["confirmation"]["url"]
    too_soon = await client.post(f"/apps/{app.app_id}/users/{object_id}/resend")
    assert too_soon.status == 429 and "(code 9001)" in too_soon.text
    assert [entry.action for entry in await audit_of(sessions, app.app_id)] == ["user.resend-confirmation"]


async def test_deleting_a_user_after_the_confirmation_page(client, make_app, sessions):
    app = await make_app()
    object_id = await add_user(sessions, app, "gone@example.com")
    await add_session(sessions, app, object_id, datetime.now(UTC))
    confirm = await client.get(f"/apps/{app.app_id}/users/{object_id}/delete")
    assert confirm.status == 200 and 'data-page="user-delete"' in confirm.text
    async with sessions() as session:
        assert await session.scalar(select(User).where(User.object_id == object_id)) is not None
    page = await client.post(f"/apps/{app.app_id}/users/{object_id}/delete")
    assert page.status == 200 and page.url.endswith("/users?notice=deleted") and "The user was deleted." in page.text
    async with sessions() as session:
        assert await session.scalar(select(User).where(User.object_id == object_id)) is None
        assert (
            await session.scalar(
                select(func.count()).select_from(SessionToken).where(SessionToken.user_id == object_id)
            )
            == 0
        )
    [entry] = await audit_of(sessions, app.app_id)
    assert (entry.action, entry.details) == ("user.delete", {"userId": object_id})
    assert (await client.post(f"/apps/{app.app_id}/users/{object_id}/delete")).status == 404


async def test_changes_without_the_csrf_token_are_refused(client, make_app, sessions):
    app = await make_app()
    object_id = await add_user(sessions, app, "kept@example.com")
    for path, fields in (
        (f"/users/{object_id}/status", {"status": "DISABLED"}),
        (f"/users/{object_id}/delete", {}),
        ("/users", {"p.email": "new@example.com", "password": PASSWORD}),
    ):
        assert (await client.post(f"/apps/{app.app_id}{path}", fields, csrf=False)).status == 403
        cross = await client.post(f"/apps/{app.app_id}{path}", fields, headers={"Origin": "https://evil.example"})
        assert cross.status == 403
    async with sessions() as session:
        users = list(await session.scalars(select(User).where(User.app_id == app.app_id)))
    assert [(user.object_id, user.status) for user in users] == [(object_id, UserStatus.ENABLED)]
    assert await audit_of(sessions, app.app_id) == []


async def test_a_signed_out_request_gets_the_sign_in_page(anonymous, make_app):
    app = await make_app()
    page = await anonymous.get(f"/apps/{app.app_id}/users")
    assert page.status == 200 and "/sign-in" in page.url and 'data-page="sign-in"' in page.text


async def test_the_registration_deletes_a_user_with_its_sessions(settings, engine, make_app, sessions):
    app = await make_app()
    object_id = await add_user(sessions, app, "ann@example.com")
    await add_session(sessions, app, object_id, datetime.now(UTC))
    async with open_registrar(settings, engine, hash_workers=1) as registrar:
        tenant = await registrar.load_tenant(app.app_id)
        other = await registrar.load_tenant((await make_app()).app_id)
        with pytest.raises(ApiError) as elsewhere:
            await registrar.accounts.delete_user(other, object_id)
        assert elsewhere.value.code == 9004
        await registrar.accounts.delete_user(tenant, object_id.lower())
        for missing in (object_id, "not-a-guid"):
            with pytest.raises(ApiError) as unknown:
                await registrar.accounts.delete_user(tenant, missing)
            assert unknown.value.code == 9004
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(User).where(User.object_id == object_id)) == 0
        assert (
            await session.scalar(
                select(func.count()).select_from(SessionToken).where(SessionToken.user_id == object_id)
            )
            == 0
        )
