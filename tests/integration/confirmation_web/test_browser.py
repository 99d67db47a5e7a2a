"""The pages in a real headless Chromium: the pending page confirms by itself, the button works
without script, the expired page sends a new link; the password-reset form sets a password (and
says what is wrong, with script and without), its expired page sends a new link; screenshots of
every page go to test-artifacts/screenshots/ for a human to look at."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from argon2.exceptions import VerificationError
from playwright.async_api import Browser, Page, async_playwright

from tests.integration.confirmation_web.conftest import CHEAP_HASHER, OLD_PASSWORD
from tests.integration.confirmation_web.support import wait_for_events
from tests.support.polling import free_port
from userreg.confirmation_web.app import create_app
from userreg.shared.db import UserStatus
from userreg.shared.events import USER_CONFIRMATION_REQUESTED, USER_CONFIRMED

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 760}


@pytest.fixture
async def public_settings(settings):
    """Settings whose public URL is the test server itself, so links in events open in the browser."""
    port = free_port()
    return settings.model_copy(
        update={"public_confirmation_url": f"http://127.0.0.1:{port}", "confirmation_port": port}
    )


@pytest.fixture
async def site(public_settings) -> AsyncIterator[str]:
    server = TestServer(create_app(public_settings), host="127.0.0.1", port=public_settings.confirmation_port)
    await server.start_server()
    yield public_settings.public_confirmation_url
    await server.close()


@pytest.fixture
def make_public_link(sessions, public_settings, make_link):
    """Links whose URL is this test's server."""

    async def make(app, **kwargs):
        made = await make_link(app, **kwargs)
        return dataclasses.replace(made, url=f"{public_settings.public_confirmation_url}{made.path}")

    return make


@pytest.fixture
def make_public_reset_link(public_settings, make_reset_link):
    """Password-reset links whose URL is this test's server."""

    async def make(app, **kwargs):
        made = await make_reset_link(app, **kwargs)
        return dataclasses.replace(made, url=f"{public_settings.public_confirmation_url}{made.path}")

    return make


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


class Watched:
    """A page whose console errors (CSP violations included), script errors and failed requests
    are collected. Chromium also logs every document served with an error status (the expired
    page's 410, say); those statuses are the point of the pages and are asserted by the tests."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))

    def _console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource: the server responded"):
            self.problems.append(message.text)


async def new_page(browser: Browser, *, viewport=DESKTOP, javascript=True, locale="en-US") -> Watched:
    context = await browser.new_context(viewport=viewport, java_script_enabled=javascript, locale=locale)
    return Watched(await context.new_page())


async def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def data_page(page: Page) -> str | None:
    return await page.get_attribute("body", "data-page")


@pytest.mark.usefixtures("site")
async def test_pending_link_confirms_by_itself(
    browser, make_app, make_public_link, user_status, event_queue, outbox_of
):
    app = await make_app("Northwind", email_confirmation_required=True)
    link = await make_public_link(app)
    watched = await new_page(browser)
    response = await watched.page.goto(link.url)
    assert response is not None
    await watched.page.wait_for_selector('body[data-page="confirmation-confirmed"]', timeout=10_000)
    assert await watched.page.inner_text("h1") == "Your email address is confirmed"
    await shot(watched.page, "confirmation-confirmed-en-desktop")
    assert await user_status(link.user_id) is UserStatus.ENABLED
    assert len(await wait_for_events(event_queue, link.user_id, USER_CONFIRMED, outbox_of)) == 1
    assert watched.problems == []

    # Opening the link again: the confirmed page, never an error.
    await watched.page.goto(link.url)
    assert await data_page(watched.page) == "confirmation-confirmed"
    assert "already confirmed" in await watched.page.inner_text("h1")
    await shot(watched.page, "confirmation-confirmed-again-en-desktop")


@pytest.mark.usefixtures("site")
async def test_without_script_the_button_confirms(browser, make_app, make_public_link, user_status):
    app = await make_app("Northwind", email_confirmation_required=True)
    link = await make_public_link(app)
    watched = await new_page(browser, javascript=False)
    await watched.page.goto(link.url)
    assert await data_page(watched.page) == "confirmation-pending"
    await shot(watched.page, "confirmation-pending-en-desktop")
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING
    await watched.page.get_by_role("button", name="Confirm my email address").click()
    await watched.page.wait_for_selector('body[data-page="confirmation-confirmed"]')
    assert await user_status(link.user_id) is UserStatus.ENABLED
    assert watched.problems == []


@pytest.mark.usefixtures("site")
async def test_expired_link_sends_a_new_link_that_confirms(
    browser, make_app, make_public_link, user_status, event_queue, outbox_of, tokens_of
):
    app = await make_app("Northwind", email_confirmation_required=True)
    link = await make_public_link(app, expired=True)
    watched = await new_page(browser)
    response = await watched.page.goto(link.url)
    assert response is not None and response.status == 410
    assert await data_page(watched.page) == "confirmation-expired"
    await shot(watched.page, "confirmation-expired-en-desktop")

    await watched.page.get_by_role("button", name="Send a new link").click()
    await watched.page.wait_for_selector("text=We sent a new confirmation link")
    assert await data_page(watched.page) == "confirmation-expired"
    await shot(watched.page, "confirmation-expired-sent-en-desktop")
    assert await tokens_of(link.user_id) == 2
    [event] = await wait_for_events(event_queue, link.user_id, USER_CONFIRMATION_REQUESTED, outbox_of)

    # Asking again at once: the cool-down answers, and says when to try again.
    await watched.page.goto(link.url)
    await watched.page.get_by_role("button", name="Send a new link").click()
    await watched.page.wait_for_selector("text=try again in")
    await shot(watched.page, "confirmation-expired-too-soon-en-desktop")
    assert await tokens_of(link.user_id) == 2

    # The link from the new email confirms.
    await watched.page.goto(event["confirmation"]["url"])
    await watched.page.wait_for_selector('body[data-page="confirmation-confirmed"]', timeout=10_000)
    assert await user_status(link.user_id) is UserStatus.ENABLED
    assert watched.problems == []


@pytest.mark.usefixtures("site")
async def test_screenshots_of_every_page_in_both_languages_and_sizes(browser, make_app, make_public_link, site):
    app = await make_app("Northwind Traders", email_confirmation_required=True)
    for locale, browser_locale in (("en", "en-US"), ("de", "de-DE")):
        for size_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            links = {
                "confirmation-pending": await make_public_link(app),
                "confirmation-expired": await make_public_link(app, expired=True),
                "confirmation-disabled": await make_public_link(app, status=UserStatus.DISABLED),
                "confirmation-confirmed": await make_public_link(app, status=UserStatus.ENABLED),
            }
            for name, link in links.items():
                # Without script, so the pending page stays on screen instead of confirming.
                watched = await new_page(
                    browser,
                    viewport=viewport,
                    javascript=name != "confirmation-pending",
                    locale=browser_locale,
                )
                await watched.page.set_extra_http_headers({"Accept-Language": browser_locale})
                await watched.page.goto(link.url)
                assert await data_page(watched.page) == name
                assert await watched.page.get_attribute("html", "lang") == locale
                await shot(watched.page, f"{name}-{locale}-{size_name}")
                # Nothing overflows sideways on a phone.
                width = await watched.page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], (name, width)
                assert watched.problems == []
                await watched.page.context.close()
            watched = await new_page(browser, viewport=viewport, locale=browser_locale)
            await watched.page.set_extra_http_headers({"Accept-Language": browser_locale})
            await watched.page.goto(f"{site}/{app.app_id}/confirm/not-a-token")
            assert await data_page(watched.page) == "confirmation-failed"
            await shot(watched.page, f"confirmation-failed-{locale}-{size_name}")
            await watched.page.context.close()


# --- the password-reset pages ----------------------------------------------------------------------

NEW_PASSWORD = "new browser passphrase"


def verifies(password_hash: str, password: str) -> bool:
    """What a login checks: does the stored argon2id hash verify this password?"""
    try:
        return CHEAP_HASHER.verify(password_hash, password)
    except VerificationError:
        return False


async def fill_reset_form(page: Page, password: str, repeat: str, *, german: bool = False) -> None:
    labels = ("Neues Passwort", "Neues Passwort wiederholen") if german else ("New password", "Repeat the new password")
    await page.get_by_label(labels[0], exact=True).fill(password)
    await page.get_by_label(labels[1], exact=True).fill(repeat)


@pytest.mark.usefixtures("site")
async def test_the_reset_form_sets_the_password_and_a_pending_user_is_confirmed(
    browser, make_app, make_public_reset_link, make_session, account_of, user_status
):
    app = await make_app("Northwind", email_confirmation_required=True)
    link = await make_public_reset_link(app, status=UserStatus.EMAIL_CONFIRMATION_PENDING)
    await make_session(link.user_id)
    before = await account_of(link.user_id)
    watched = await new_page(browser)
    response = await watched.page.goto(link.url)
    assert response is not None and response.status == 200
    assert await data_page(watched.page) == "password-reset"
    await shot(watched.page, "password-reset-en-desktop")

    # Two different passwords: the page's script marks the repeat invalid, so nothing is sent.
    await fill_reset_form(watched.page, NEW_PASSWORD, "something else")
    await watched.page.get_by_role("button", name="Set the new password").click()
    message = await watched.page.eval_on_selector('input[name="repeat"]', "input => input.validationMessage")
    assert "do not match" in message
    assert await data_page(watched.page) == "password-reset"
    assert await account_of(link.user_id) == before

    await watched.page.get_by_label("Repeat the new password", exact=True).fill(NEW_PASSWORD)
    await watched.page.get_by_role("button", name="Set the new password").click()
    await watched.page.wait_for_selector('body[data-page="password-reset-done"]', timeout=10_000)
    assert await watched.page.inner_text("h1") == "Your password has been changed"
    assert "Your email address is confirmed too" in await watched.page.inner_text("main")
    await shot(watched.page, "password-reset-done-en-desktop")
    password_hash, live_sessions, reset_links = await account_of(link.user_id)
    assert verifies(password_hash, NEW_PASSWORD) and not verifies(password_hash, OLD_PASSWORD)
    assert (live_sessions, reset_links) == (0, 0)
    assert await user_status(link.user_id) is UserStatus.ENABLED
    assert watched.problems == []

    # The link works once.
    response = await watched.page.goto(link.url)
    assert response is not None and response.status == 404
    assert await data_page(watched.page) == "password-reset-failed"
    await shot(watched.page, "password-reset-failed-en-desktop")


@pytest.mark.usefixtures("site")
async def test_without_script_the_server_says_what_is_wrong_with_the_password(
    browser, make_app, make_public_reset_link, account_of
):
    app = await make_app("Northwind")
    link = await make_public_reset_link(app)
    watched = await new_page(browser, javascript=False)
    await watched.page.goto(link.url)
    await fill_reset_form(watched.page, NEW_PASSWORD, NEW_PASSWORD + "!")
    async with watched.page.expect_navigation() as navigation:
        await watched.page.get_by_role("button", name="Set the new password").click()
    assert (await navigation.value).status == 400
    assert await data_page(watched.page) == "password-reset"
    assert "did not match" in await watched.page.inner_text("[role=alert]")
    await shot(watched.page, "password-reset-mismatch-en-desktop")
    assert not verifies((await account_of(link.user_id))[0], NEW_PASSWORD)

    await fill_reset_form(watched.page, NEW_PASSWORD, NEW_PASSWORD)
    await watched.page.get_by_role("button", name="Set the new password").click()
    await watched.page.wait_for_selector('body[data-page="password-reset-done"]')
    assert verifies((await account_of(link.user_id))[0], NEW_PASSWORD)
    assert watched.problems == []


@pytest.mark.usefixtures("site")
async def test_an_expired_reset_link_sends_a_new_link(browser, make_app, make_public_reset_link, account_of):
    app = await make_app("Northwind")
    link = await make_public_reset_link(app, expired=True)
    watched = await new_page(browser)
    response = await watched.page.goto(link.url)
    assert response is not None and response.status == 410
    assert await data_page(watched.page) == "password-reset-expired"
    await shot(watched.page, "password-reset-expired-en-desktop")
    await watched.page.get_by_role("button", name="Send a new link").click()
    await watched.page.wait_for_selector("text=We sent a new password-reset link")
    await shot(watched.page, "password-reset-expired-sent-en-desktop")
    assert (await account_of(link.user_id))[2] == 2

    await watched.page.goto(link.url)
    await watched.page.get_by_role("button", name="Send a new link").click()
    await watched.page.wait_for_selector("text=try again in")
    assert (await account_of(link.user_id))[2] == 2
    assert watched.problems == []


@pytest.mark.usefixtures("site")
async def test_screenshots_of_every_reset_page_in_both_languages_and_sizes(browser, make_app, make_public_reset_link):
    app = await make_app("Northwind Traders")
    for locale, browser_locale in (("en", "en-US"), ("de", "de-DE")):
        for size_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            links = {
                "password-reset": await make_public_reset_link(app),
                "password-reset-expired": await make_public_reset_link(app, expired=True),
                "password-reset-failed": await make_public_reset_link(app, status=UserStatus.DISABLED),
            }
            for name, link in links.items():
                watched = await new_page(browser, viewport=viewport, locale=browser_locale)
                await watched.page.set_extra_http_headers({"Accept-Language": browser_locale})
                await watched.page.goto(link.url)
                assert await data_page(watched.page) == name
                assert await watched.page.get_attribute("html", "lang") == locale
                await shot(watched.page, f"{name}-{locale}-{size_name}")
                if name == "password-reset":
                    await fill_reset_form(watched.page, NEW_PASSWORD, NEW_PASSWORD, german=locale == "de")
                    await watched.page.locator("button[type=submit]").click()
                    await watched.page.wait_for_selector('body[data-page="password-reset-done"]')
                    await shot(watched.page, f"password-reset-done-{locale}-{size_name}")
                # Nothing overflows sideways on a phone.
                width = await watched.page.evaluate("document.documentElement.scrollWidth")
                assert width <= viewport["width"], (name, width)
                assert watched.problems == []
                await watched.page.context.close()
