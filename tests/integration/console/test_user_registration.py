"""An app's User Registration page: the two toggles first, every setting with a visible label
naming it, values checked as `userreg app set` checks them (errors beside the field, nothing
saved), one audit entry per changed setting, and a change the registration API applies to its
next request."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from userreg.registration.app import create_app as create_registration_app
from userreg.shared.app_settings import LABELS
from userreg.shared.apps import SETTINGS
from userreg.shared.db.models import App, AuditEntry, User, UserStatus
from userreg.shared.events import USER_REGISTERED
from userreg.shared.tokens import new_guid

CONTROL = re.compile(r'<(input|select)[^>]*\bid="setting-([A-Za-z]+)"[^>]*>')
LABEL = re.compile(r'<label for="setting-([A-Za-z]+)">([^<]*)</label>')


@pytest.fixture
async def registration(settings) -> AsyncIterator[TestClient]:
    """The registration service (with its tenant cache, as it runs), on a test server."""
    client = TestClient(TestServer(create_registration_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def register(registration: TestClient, app: App) -> dict:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await registration.post(
        f"/{app.app_id}/{app.rest_api_key}/users/register", json={"email": email, "password": "secret password 1"}
    )
    return await response.json()


def form_of(text: str) -> dict[str, str]:
    """The form as the page fills it (what a browser posts, with every toggle as it is)."""
    fields = {}
    for match in re.finditer(r'<input [^>]*name="([A-Za-z_]+)"[^>]*>', text):
        tag, name = match[0], match[1]
        if 'type="checkbox"' in tag:
            if re.search(r"\schecked\b", tag):
                fields[name] = "true"
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name] = value[1] if value else ""
    for match in re.finditer(r'<select [^>]*name="([A-Za-z]+)"[^>]*>(.*?)</select>', text, re.S):
        selected = re.search(r'<option value="([^"]*)" selected>', match[2])
        fields[match[1]] = selected[1] if selected else ""
    return fields


async def audit_of(sessions, app_id: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(select(AuditEntry).where(AuditEntry.app_id == app_id).order_by(AuditEntry.id))
        )


async def test_every_setting_has_a_control_with_a_visible_label(client, make_app):
    app = await make_app("Labelled")
    page = await client.get(f"/apps/{app.app_id}/registration")
    assert page.status == 200 and 'data-page="user-registration"' in page.text
    controls = [match[2] for match in CONTROL.finditer(page.text)]
    assert controls[:2] == ["registrationEnabled", "emailConfirmationRequired"]
    assert sorted(controls) == sorted(SETTINGS)
    labels = dict(LABEL.findall(page.text))
    assert labels == {name: LABELS[name] for name in SETTINGS}
    assert labels["registrationEnabled"] == "Registration"
    assert labels["emailConfirmationRequired"] == "Email confirmation"
    assert labels["identityProperty"] == "Identity property"
    assert labels["confirmationLinkTtl"] == "Confirmation link lifetime"


async def test_turning_registration_off_makes_the_api_answer_3009(client, make_app, registration, sessions, operator):
    app = await make_app("Switchable")
    assert "objectId" in await register(registration, app)  # and the service has the app cached

    page = await client.get(f"/apps/{app.app_id}/registration")
    fields = form_of(page.text)
    assert fields["registrationEnabled"] == "true"
    del fields["registrationEnabled"]  # the checkbox unticked
    saved = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert saved.status == 200 and "Saved." in saved.text

    answer = await register(registration, app)
    assert answer["code"] == 3009
    [entry] = await audit_of(sessions, app.app_id)
    assert (entry.actor, entry.action) == (f"operator:{operator.email}", "app.set")
    assert entry.details == {"setting": "registrationEnabled", "old": True, "new": False}

    fields["registrationEnabled"] = "true"
    await client.post(f"/apps/{app.app_id}/registration", fields)
    assert "objectId" in await register(registration, app)


async def test_settings_are_saved_together_with_an_entry_each(client, make_app, sessions):
    app = await make_app("Configured")
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    fields.update(
        emailConfirmationRequired="true",
        confirmationLinkTtl="3600",
        clientRateLimit="100/1m",
        allowedOrigins="https://a.example.com  http://localhost:3000",
        beforeRegisterWebhookUrl="https://hook:secret@hooks.example.com/before",
    )
    page = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert page.status == 200
    async with sessions() as session:
        stored = await session.get(App, app.app_id)
    assert stored.email_confirmation_required is True and stored.confirmation_link_ttl == 3600
    assert stored.client_rate_limit == "100/60s"
    assert stored.allowed_origins == "https://a.example.com http://localhost:3000"
    entries = {entry.details["setting"]: entry.details for entry in await audit_of(sessions, app.app_id)}
    assert set(entries) == {
        "emailConfirmationRequired",
        "confirmationLinkTtl",
        "clientRateLimit",
        "allowedOrigins",
        "beforeRegisterWebhookUrl",
    }
    assert entries["confirmationLinkTtl"] == {"setting": "confirmationLinkTtl", "old": 86400, "new": 3600}
    assert "secret" not in str(entries["beforeRegisterWebhookUrl"])

    page = await client.post(f"/apps/{app.app_id}/registration", form_of(page.text))
    assert "Nothing changed." in page.text
    assert len(await audit_of(sessions, app.app_id)) == 5


async def test_a_wrong_value_is_shown_beside_its_field_and_nothing_is_saved(client, make_app, sessions):
    app = await make_app("Careful")
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    del fields["registrationEnabled"]
    fields.update(confirmationLinkTtl="0", clientRateLimit="often")
    page = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert page.status == 400 and "Nothing was saved" in page.text
    assert re.search(r'id="error-confirmationLinkTtl">confirmationLinkTtl must be at least 1', page.text)
    assert 'id="error-clientRateLimit">clientRateLimit: a rate limit is' in page.text
    assert 'value="often"' in page.text  # what was typed stays in the form
    assert "registrationEnabled" not in form_of(page.text)  # the toggle as it was posted: off
    async with sessions() as session:
        stored = await session.get(App, app.app_id)
    assert stored.registration_enabled is True and stored.confirmation_link_ttl == 86400
    assert await audit_of(sessions, app.app_id) == []


async def test_a_setting_value_with_markup_is_shown_escaped(client, make_app):
    app = await make_app("Escaped")
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    fields["name"] = f"<script>alert(1)</script> {uuid.uuid4().hex[:6]}"
    page = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert page.status == 200
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_a_name_taken_by_another_app_is_refused(client, make_app):
    other = await make_app(f"Other {uuid.uuid4().hex[:6]}")
    app = await make_app("Renamed")
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    fields["name"] = other.name
    page = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert page.status == 400 and 'id="error-name"' in page.text and "exists already" in page.text


async def add_users(sessions, app: App, *names: str) -> None:
    async with sessions() as session, session.begin():
        for number, name in enumerate(names):
            email = f"user{number}-{uuid.uuid4().hex[:6]}@example.com"
            session.add(
                User(
                    object_id=new_guid(),
                    app_id=app.app_id,
                    identity_key=email,
                    properties={"email": email, "name": name},
                    status=UserStatus.ENABLED,
                )
            )


async def test_the_identity_property_is_changed_as_the_schema_command_changes_it(client, make_app, sessions):
    app = await make_app("Identity")
    await add_users(sessions, app, "Ada", "Grace")
    page = await client.get(f"/apps/{app.app_id}/registration")
    assert re.search(
        r'<select id="setting-identityProperty"[^>]*>.*<option value="name">name</option>', page.text, re.S
    )
    fields = form_of(page.text)
    assert fields["identityProperty"] == "email"
    fields["identityProperty"] = "name"
    saved = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert saved.status == 200 and "Saved." in saved.text
    async with sessions() as session:
        stored = await session.get(App, app.app_id)
        keys = set(await session.scalars(select(User.identity_key).where(User.app_id == app.app_id)))
    assert stored.identity_property == "name" and keys == {"ada", "grace"}
    [entry] = await audit_of(sessions, app.app_id)
    assert entry.details == {"setting": "identityProperty", "old": "email", "new": "name"}


async def test_an_identity_two_users_share_is_refused_and_nothing_saved(client, make_app, sessions):
    app = await make_app("Shared names")
    await add_users(sessions, app, "Sam", "sam")
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    fields.update(identityProperty="name", confirmationLinkTtl="7200")
    page = await client.post(f"/apps/{app.app_id}/registration", fields)
    assert page.status == 400 and 'id="error-identityProperty"' in page.text and "share a value" in page.text
    async with sessions() as session:
        stored = await session.get(App, app.app_id)
    assert stored.identity_property == "email" and stored.confirmation_link_ttl == 86400
    assert await audit_of(sessions, app.app_id) == []


async def test_turning_email_confirmation_on_makes_new_users_get_the_confirmation_email(
    client, make_app, registration, event_queue
):
    """The next registration is pending, and its `user.registered` event carries the confirmation
    link (the mailer turns it into the confirmation email)."""
    app = await make_app("Confirming")
    assert (await register(registration, app))["userStatus"] == "ENABLED"
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    fields["emailConfirmationRequired"] = "true"
    assert (await client.post(f"/apps/{app.app_id}/registration", fields)).status == 200

    user = await register(registration, app)
    assert user["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    async with asyncio.timeout(15):
        while True:
            message = await event_queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            body = json.loads(message.body)
            if message.type == USER_REGISTERED and body["user"]["objectId"] == user["objectId"]:
                break
    assert body["user"]["email"] == user["email"]
    assert body["confirmation"]["url"].startswith(f"http://confirm.test.invalid/{app.app_id}/confirm/")


async def test_an_app_that_shares_its_name_with_an_older_app_can_still_save_its_settings(client, make_app, sessions):
    """Apps made before names were unique may share one: only a new name must be free."""
    name = f"Twin {uuid.uuid4().hex[:8]}"
    await make_app(name)
    app = await make_app(name)
    fields = form_of((await client.get(f"/apps/{app.app_id}/registration")).text)
    fields["confirmationLinkTtl"] = "7200"
    assert (await client.post(f"/apps/{app.app_id}/registration", fields)).status == 200
    async with sessions() as session:
        assert (await session.get(App, app.app_id)).confirmation_link_ttl == 7200
