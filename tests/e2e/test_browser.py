"""The confirmation link of a real email, opened in headless Chromium, against the running system:
the page confirms by itself and the login works; an expired link's page sends a new email whose
link confirms. Screenshots of every page (and of the emails) go to test-artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.support.api import PASSWORD
from tests.support.system import Email, unique_address
from userreg.shared.db import UserStatus

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("e2e")]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
STATUS_NOISE = "Failed to load resource: the server responded"
PAGE_TIMEOUT_MS = 15_000


class Tab:
    """A page whose documents (method, status, URL) and problems (script errors, console errors,
    failed requests) are recorded. Chromium logs each document served with an error status (the
    expired page's 410) as a console error; those statuses are asserted by the tests instead."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.documents: list[tuple[str, int, str]] = []
        self.problems: list[str] = []
        page.on("response", self._response)
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        page.on("console", self._console)

    def _response(self, response) -> None:
        if response.request.resource_type == "document":
            self.documents.append((response.request.method, response.status, response.url))

    def _console(self, message) -> None:
        if message.type == "error" and not message.text.startswith(STATUS_NOISE):
            self.problems.append(message.text)

    async def page_name(self) -> str | None:
        return await self.page.get_attribute("body", "data-page")

    async def wait_for_page(self, name: str) -> None:
        await self.page.wait_for_selector(f'body[data-page="{name}"]', timeout=PAGE_TIMEOUT_MS)

    async def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SCREENSHOTS / f"e2e-{name}.png"), full_page=True)


async def new_tab(browser: Browser) -> Tab:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    return Tab(await context.new_page())


async def shoot_email(browser: Browser, email: Email, name: str) -> None:
    """The email's HTML part as a mail client would show it (without script)."""
    assert email.html is not None
    context = await browser.new_context(viewport={"width": 800, "height": 900}, java_script_enabled=False)
    page = await context.new_page()
    await page.set_content(email.html)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"e2e-{name}.png"), full_page=True)
    await context.close()


async def test_the_emailed_link_confirms_in_the_browser(system, api, browser, make_app, user_status):
    app = await make_app("Wide World Importers", email_confirmation_required=True)
    address = unique_address("frank")
    user = (await api.register(app, {"email": address, "password": PASSWORD, "name": "Frank"})).body
    assert (await api.login(app, address, PASSWORD)).code == 9002

    [email] = await system.wait_for_emails(address)
    await shoot_email(browser, email, "email-confirmation")
    link = system.link_in(email)

    tab = await new_tab(browser)
    await tab.page.goto(link)
    await tab.wait_for_page("confirmation-confirmed")
    await tab.shot("confirmation-confirmed")
    assert "Wide World Importers" in await tab.page.inner_text("body")
    # The link's GET showed the pending page; its script's POST confirmed.
    assert [(method, status) for method, status, _ in tab.documents] == [("GET", 200), ("POST", 200)]
    assert tab.problems == []
    assert await user_status(user["objectId"]) is UserStatus.ENABLED

    logged_in = await api.login(app, address, PASSWORD)
    assert logged_in.status == 200, logged_in
    assert logged_in.body["user-token"]

    # Opening the link again shows the confirmed page.
    await tab.page.goto(link)
    assert await tab.page_name() == "confirmation-confirmed"
    await tab.shot("confirmation-confirmed-again")
    await tab.page.context.close()


async def test_an_expired_link_sends_a_new_email_whose_link_confirms(
    system, api, browser, make_app, age_links, user_status
):
    app = await make_app("Adventure Works", email_confirmation_required=True, confirmation_link_ttl=3600)
    address = unique_address("grace")
    user = (await api.register(app, {"email": address, "password": PASSWORD, "name": "Grace"})).body
    [first] = await system.wait_for_emails(address)
    # Two hours later: the link has expired (and the resend cool-down has long passed).
    await age_links(user["objectId"], 7200)

    tab = await new_tab(browser)
    response = await tab.page.goto(system.link_in(first))
    assert response is not None and response.status == 410
    assert await tab.page_name() == "confirmation-expired"
    await tab.shot("confirmation-expired")

    await tab.page.get_by_role("button", name="Send a new link").click()
    await tab.page.wait_for_selector("text=We sent a new confirmation link", timeout=PAGE_TIMEOUT_MS)
    await tab.shot("confirmation-expired-new-link-sent")

    _, second = await system.wait_for_emails(address, 2)
    await shoot_email(browser, second, "email-new-link")
    assert system.link_in(second) != system.link_in(first)
    assert await user_status(user["objectId"]) is UserStatus.EMAIL_CONFIRMATION_PENDING

    await tab.page.goto(system.link_in(second))
    await tab.wait_for_page("confirmation-confirmed")
    await tab.shot("confirmation-confirmed-with-new-link")
    assert tab.problems == []
    assert await user_status(user["objectId"]) is UserStatus.ENABLED
    assert (await api.login(app, address, PASSWORD)).status == 200

    # The expired link now shows the confirmed page too.
    await tab.page.goto(system.link_in(first))
    assert await tab.page_name() == "confirmation-confirmed"
    await tab.page.context.close()
