"""The official Backendless SDK's browser build (node_modules/backendless/dist/backendless.js) in a
web app served on another origin than the API, in headless Chromium: with the page's origin in the
apps' `allowedOrigins` every call works as in Node; with only other origins there, the browser
withholds every answer (CORS). And the CORS headers themselves, read with a plain HTTP client."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser

from tests.e2e.sdk import (
    APP_INFO_COMPLAINT,
    UserFlow,
    blocked_outcomes,
    check_app_info,
    check_flow_emails,
    differences,
    expected_outcomes,
    prepare_user_flow,
    web_app_origin,
)
from tests.e2e.test_browser import STATUS_NOISE  # Chromium's log of an error status: the flow expects those
from tests.support.api import PASSWORD
from tests.support.polling import eventually

pytestmark = pytest.mark.xdist_group("e2e")

FLOW_TIMEOUT = 60.0
CORS_BLOCKED = "has been blocked by CORS policy"
ELSEWHERE = "https://elsewhere.example"
# The request headers the official SDKs send (docs/api.md, Browser clients).
SDK_HEADERS = {"content-type", "user-token", "application-type"}


async def allow_origins(admin, http, system, flow: UserFlow, origins: str, probe_origin: str) -> None:
    """Set every app's `allowedOrigins` with the admin command, and wait until the running service
    answers `probe_origin`'s preflight accordingly (its tenant cache follows the change)."""
    allowed = probe_origin in origins.split()
    for app in flow.all_apps:
        shown = await admin("app", "set", app.app_id, f"allowedOrigins={origins}")
        assert shown["allowedOrigins"] == origins

        async def applied(app=app) -> bool:
            headers = await preflight(
                http, f"{system.registration_url}/{app.app_id}/{app.rest_api_key}/users/login", probe_origin
            )
            return ("access-control-allow-origin" in headers) == allowed

        await eventually(applied, what=f"allowedOrigins={origins} to apply")


async def preflight(
    http, url: str, origin: str, requested_headers: str | None = "content-type,user-token"
) -> dict[str, str]:
    """The CORS headers (lower-cased names) and ":status" of a browser's preflight of a POST sending
    `requested_headers` (by default a JSON POST with a session, as the SDK's browser build sends it)."""
    headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    if requested_headers is not None:
        headers["Access-Control-Request-Headers"] = requested_headers
    async with http.options(url, headers=headers) as response:
        return {
            name.lower(): value
            for name, value in response.headers.items()
            if name.lower().startswith("access-control-")
        } | {":status": str(response.status)}


async def run_in_browser(browser: Browser, origin: str, flow_input: dict) -> tuple[dict, list[str]]:
    """user_flow.js in the web app at `origin`: its results, and the console's errors and warnings."""
    context = await browser.new_context(locale="en-US")
    page = await context.new_page()
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if message.type in ("error", "warning") and not message.text.startswith(STATUS_NOISE)
            else None
        ),
    )
    page.on("pageerror", lambda problem: console.append(f"page error: {problem}"))
    try:
        await page.goto(f"{origin}/")
        assert await page.evaluate("typeof Backendless.initApp") == "function"
        results = await asyncio.wait_for(
            page.evaluate("input => userFlow(Backendless, input)", flow_input), FLOW_TIMEOUT
        )
    finally:
        await context.close()
    return results, console


@pytest.mark.browser
async def test_the_browser_sdk_works_from_an_allowed_origin(system, api, http, admin, browser, make_app, age_links):
    flow = await prepare_user_flow(system, api, make_app, age_links, "Web")
    async with web_app_origin() as origin:
        assert origin != system.registration_url  # another port: another origin
        await allow_origins(admin, http, system, flow, f"{ELSEWHERE} {origin}", origin)

        results, console = await run_in_browser(browser, origin, flow.input(system.registration_url))

    check_app_info(results, flow.open)
    wrong = differences(results, expected_outcomes(flow.addresses))
    assert not wrong, "\n".join(wrong)
    assert console == [], console  # no CORS complaint, no "could not load backendless app info"
    await check_flow_emails(system, flow)


@pytest.mark.browser
async def test_the_browser_sdk_fails_as_cors_failures_from_an_origin_not_allowed(
    system, api, http, admin, browser, make_app, age_links
):
    flow = await prepare_user_flow(system, api, make_app, age_links, "Foreign")
    async with web_app_origin() as origin:
        await allow_origins(admin, http, system, flow, ELSEWHERE, origin)

        results, console = await run_in_browser(browser, origin, flow.input(system.registration_url))

    assert not results["app info"]["ok"]
    wrong = differences(results, blocked_outcomes(flow.addresses))
    assert not wrong, "\n".join(wrong)
    assert any(CORS_BLOCKED in line for line in console), console
    assert any(APP_INFO_COMPLAINT in line for line in console), console


async def test_cors_headers_name_the_allowed_origin_only(system, api, http, admin, make_app):
    app = await make_app("Origins")
    allowed, other = "https://app.example", "https://evil.example"
    shown = await admin("app", "set", app.app_id, f"allowedOrigins=https://www.example {allowed}")
    assert shown["allowedOrigins"] == f"https://www.example {allowed}"
    login_url = api.url(app, "/users/login")

    # The preflight of an allowed origin: 204, its own name back, the methods and the SDKs' headers
    # (asked for by name, or not named at all).
    await eventually(lambda: preflight_if_allowed(http, login_url, allowed), what="the origin list to apply")
    for requested in (",".join(sorted(SDK_HEADERS)), None):
        answer = await preflight(http, login_url, allowed, requested)
        assert answer[":status"] == "204"
        assert answer["access-control-allow-origin"] == allowed
        assert "POST" in split(answer["access-control-allow-methods"].upper())
        assert split(answer["access-control-allow-headers"].lower()) >= SDK_HEADERS, answer

    # Every answer carries it, errors included, so that the page can read the {code, message}.
    async with http.post(
        login_url, json={"login": "nobody@example.com", "password": PASSWORD}, headers={"Origin": allowed}
    ) as response:
        assert response.status == 401
        assert (await response.json())["code"] == 3003
        assert response.headers.get("Access-Control-Allow-Origin") == allowed

    # Another origin gets no CORS header at all, on the preflight or on the answer.
    refused = await preflight(http, login_url, other)
    assert set(refused) == {":status"}, refused
    async with http.post(
        login_url, json={"login": "nobody@example.com", "password": PASSWORD}, headers={"Origin": other}
    ) as response:
        assert response.status == 401
        assert not [name for name in response.headers if name.lower().startswith("access-control-")]

    # An app left at the default (`*`) answers any origin.
    default = await make_app("Any Origin")
    anyone = await preflight(http, api.url(default, "/users/login"), other)
    assert anyone.get("access-control-allow-origin") in ("*", other), anyone


async def preflight_if_allowed(http, url: str, origin: str) -> dict[str, str] | None:
    headers = await preflight(http, url, origin)
    return headers if "access-control-allow-origin" in headers else None


def split(header: str) -> set[str]:
    return {part.strip() for part in header.split(",") if part.strip()}
