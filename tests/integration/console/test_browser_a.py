"""The console's sign-in, Apps, User Registration, System and Audit log pages in a real headless
Chromium: what an operator does on them works (with script and without), each page is looked at on
a laptop and a phone, light and dark (screenshots in test-artifacts/screenshots/console/), and
axe-core finds no serious or critical accessibility violation on any of them."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Error as PlaywrightError
from sqlalchemy import select

from tests.integration.console.browser import (
    DESKTOP,
    PHONE,
    assert_accessible,
    look_at,
    new_page,
    shot,
    sign_in,
)
from userreg.registration.app import create_app as create_registration_app
from userreg.shared import audit
from userreg.shared.db.models import App

pytestmark = pytest.mark.browser


@pytest.fixture
async def registration(settings) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(create_registration_app(settings)))
    await client.start_server()
    yield client
    await client.close()


async def test_the_sign_in_page(browser, console_url, operator):
    for look, viewport, scheme in (
        ("desktop-light", DESKTOP, "light"),
        ("desktop-dark", DESKTOP, "dark"),
        ("phone-light", PHONE, "light"),
        ("phone-dark", PHONE, "dark"),
    ):
        watched = await new_page(browser, viewport=viewport, color_scheme=scheme)
        await watched.page.goto(f"{console_url}/apps")  # signed out: the sign-in page
        await watched.page.wait_for_selector('body[data-page="sign-in"]')
        await shot(watched.page, f"sign-in-{look}")
        await assert_accessible(watched.page)
        assert watched.problems == []
        await watched.page.context.close()

    watched = await new_page(browser)
    page = watched.page
    await page.goto(f"{console_url}/sign-in")
    await page.get_by_label("Email", exact=True).fill(operator.email)
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector("#sign-in-error")
    assert await page.inner_text("#sign-in-error") == "Email or password wrong."
    await shot(page, "sign-in-wrong-password-desktop-light")
    await assert_accessible(page)
    await page.get_by_label("Password", exact=True).fill(operator.password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector('body[data-page="apps"]')
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_selector('body[data-page="sign-in"]')
    await page.goto(f"{console_url}/apps")
    assert await page.get_attribute("body", "data-page") == "sign-in"


async def test_creating_rotating_and_deleting_an_app(browser, console_url, operator, sessions, make_app):
    await make_app(f"Northwind {uuid.uuid4().hex[:4]}")
    name = f"<script>alert('x')</script> Contoso {uuid.uuid4().hex[:6]}"
    watched = await new_page(browser)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.get_by_label("Name", exact=True).fill(name)
    await page.get_by_role("button", name="Create app").click()
    await page.wait_for_selector('body[data-page="app-keys"]')
    async with sessions() as session:
        app = await session.scalar(select(App).where(App.name == name))
    assert await page.input_value("#rest-api-key") == app.rest_api_key
    assert await page.input_value("#server-api-key") == app.server_api_key
    assert await page.get_by_role("button", name="Copy the REST API key").is_visible()
    assert name in await page.inner_text("h1")  # shown as text, never run
    await shot(page, "app-keys-new-desktop-light")
    await assert_accessible(page)

    # The keys came in the answer to the form: the keys page itself shows none.
    await page.goto(f"{console_url}/apps/{app.app_id}/keys")
    await page.wait_for_selector('body[data-page="app-keys"]')
    assert await page.locator("#rest-api-key").count() == 0
    await page.get_by_role("button", name=re.compile("Rotate the keys of")).click()
    await page.wait_for_selector("#rest-api-key")
    rotated = await page.input_value("#rest-api-key")
    assert rotated != app.rest_api_key
    await shot(page, "app-keys-rotated-desktop-light")
    # The answer is in no cache: the browser cannot go back to it, so the keys are not shown again.
    await page.go_back()
    with pytest.raises(PlaywrightError, match="ERR_CACHE_MISS"):
        await page.go_forward()
    await page.wait_for_url("chrome-error://chromewebdata/")  # the browser's own error page, not ours
    assert await page.locator("#rest-api-key").count() == 0
    watched.problems.remove(f"failed: {console_url}/apps/{app.app_id}/keys")  # that refused navigation

    await page.goto(f"{console_url}/apps")
    await shot(page, "apps-desktop-light")
    await page.get_by_role("link", name=f"Delete {name}").click()
    await page.wait_for_selector('body[data-page="app-delete"]')
    await page.get_by_label("Type the app's name").fill("wrong name")
    await page.get_by_role("button", name="Delete this app").click()
    await page.wait_for_selector("#delete-error")
    await shot(page, "app-delete-refused-desktop-light")
    await assert_accessible(page)
    await page.get_by_label("Type the app's name").fill(name)
    await page.get_by_role("button", name="Delete this app").click()
    await page.wait_for_selector('body[data-page="apps"]')
    assert "The app was deleted." in await page.inner_text("main")
    assert watched.problems == []


async def test_the_apps_and_app_pages_in_every_look(browser, console_url, operator, make_app, sessions):
    app = await make_app(f"Fabrikam {uuid.uuid4().hex[:6]}")
    async with sessions() as session, session.begin():
        audit.record(session, audit.operator_actor(operator.email), "app.create", app.app_id, name=app.name)
        audit.record(
            session, audit.command_actor(), "app.set", app.app_id, setting="registrationEnabled", old=True, new=False
        )
    problems = []
    for path, name, data_page in (
        ("/apps", "apps", "apps"),
        (f"/apps/{app.app_id}/keys", "app-keys-rotate", "app-keys"),
        (f"/apps/{app.app_id}/delete", "app-delete", "app-delete"),
        (f"/apps/{app.app_id}/registration", "user-registration", "user-registration"),
        ("/system", "system", "system"),
        ("/audit", "audit", "audit"),
    ):
        problems += await look_at(
            browser, console_url, operator.email, operator.password, path, name, data_page=data_page
        )
    assert problems == []


@pytest.mark.parametrize("javascript", [True, False])
async def test_turning_registration_off_on_the_page(browser, console_url, operator, make_app, registration, javascript):
    app = await make_app(f"Tailspin {uuid.uuid4().hex[:6]}")
    watched = await new_page(browser, javascript=javascript)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.goto(f"{console_url}/apps/{app.app_id}/registration")
    toggle = page.get_by_label("Registration", exact=True)
    assert await toggle.is_checked()
    await toggle.uncheck()
    await page.get_by_label("Client rate limit", exact=True).fill("often")
    await page.get_by_role("button", name="Save settings").click()
    await page.wait_for_selector("#error-clientRateLimit")
    await shot(page, f"user-registration-refused-{'script' if javascript else 'no-script'}")
    if javascript:
        await assert_accessible(page)
    assert not await page.get_by_label("Registration", exact=True).is_checked()  # as posted

    await page.get_by_label("Client rate limit", exact=True).fill("100/1m")
    await page.get_by_role("button", name="Save settings").click()
    await page.wait_for_selector(".notice")
    assert "Saved." in await page.inner_text(".notice")
    assert not await page.get_by_label("Registration", exact=True).is_checked()
    response = await registration.post(
        f"/{app.app_id}/{app.rest_api_key}/users/register",
        json={"email": f"u-{uuid.uuid4().hex[:8]}@example.com", "password": "secret password 1"},
    )
    assert (await response.json())["code"] == 3009
    assert watched.problems == []
