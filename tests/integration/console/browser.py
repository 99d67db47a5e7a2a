"""What the console's browser tests share: a page in a viewport and colour scheme, signing in,
screenshots under test-artifacts/screenshots/console/, and the axe-core accessibility check
(tests/a11y/package.json pins axe-core; `make sdk` runs its `npm ci`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots" / "console"
AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 800}
# Each page is looked at in these four ways: (name, viewport, colour scheme).
LOOKS = (
    ("desktop-light", DESKTOP, "light"),
    ("desktop-dark", DESKTOP, "dark"),
    ("phone-light", PHONE, "light"),
    ("phone-dark", PHONE, "dark"),
)
BLOCKING_IMPACTS = ("serious", "critical")


class Watched:
    """A page whose script errors, console errors (CSP violations included) and failed requests are
    collected in `problems` (documents served with an error status are the tests' to assert)."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(str(error)))
        page.on("requestfailed", self._request_failed)

    def _request_failed(self, request) -> None:
        # A request the page itself gave up (a live preview's fetch cut short by the form's own
        # navigation) is no failure of the console's.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed: {request.url}")

    def _console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource: the server responded"):
            self.problems.append(message.text)


async def new_page(
    browser: Browser, *, viewport=DESKTOP, color_scheme: str = "light", javascript: bool = True
) -> Watched:
    context = await browser.new_context(
        viewport=viewport, color_scheme=color_scheme, java_script_enabled=javascript, locale="en-US"
    )
    return Watched(await context.new_page())


async def sign_in(watched: Watched, base_url: str, email: str, password: str) -> None:
    """Sign in through the sign-in page; the browser keeps the session cookie."""
    page = watched.page
    await page.goto(f"{base_url}/sign-in")
    await page.get_by_label("Email", exact=True).fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_selector('body[data-page="apps"]')


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot, test-artifacts/screenshots/console/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


async def assert_accessible(page: Page) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make sdk` (npm ci in tests/a11y)")
    # Evaluated through the DevTools protocol, which the page's CSP does not govern (a script tag
    # would be refused by it, as it should be).
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    blocking = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(
            node["target"][0] if isinstance(node["target"][0], str) else str(node["target"])
            for node in violation["nodes"][:5]
        )
        for violation in result["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
    assert blocking == [], "\n".join(blocking)


async def look_at(
    browser: Browser, base_url: str, email: str, password: str, path: str, name: str, *, data_page: str
) -> list[str]:
    """Open `path` signed in, in each of `LOOKS`: a screenshot `<name>-<look>` and the axe check of
    each (the colour schemes differ in contrast). Returns the problems the pages reported
    (expected: none)."""
    problems: list[str] = []
    for look, viewport, scheme in LOOKS:
        watched = await new_page(browser, viewport=viewport, color_scheme=scheme)
        await sign_in(watched, base_url, email, password)
        await watched.page.goto(f"{base_url}{path}")
        await watched.page.wait_for_selector(f'body[data-page="{data_page}"]')
        await shot(watched.page, f"{name}-{look}")
        await assert_accessible(watched.page)
        problems += watched.problems
        await watched.page.context.close()
    return problems
