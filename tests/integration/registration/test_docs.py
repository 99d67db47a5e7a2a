"""`GET /docs`: the OpenAPI document as a page (Redoc, served from the package), under a strict
Content Security Policy, rendered by headless Chromium without asking any other site."""

from __future__ import annotations

from urllib.parse import urlsplit

from userreg.registration.api_docs import CONTENT_SECURITY_POLICY


async def test_the_page_and_its_script_come_from_the_service_with_a_strict_policy(client):
    async with client.get("/docs") as response:
        assert response.status == 200 and response.content_type == "text/html"
        page = await response.text()
        policy = response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(directive.split(" ", 1) for directive in policy.split("; "))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'" and directives["base-uri"] == "'none'"
    assert "unsafe-eval" not in policy and "http" not in policy
    assert '<redoc spec-url="openapi.json">' in page and '<script src="redoc.standalone.js">' in page
    assert "<script>" not in page  # no inline script: the policy would refuse it anyway
    async with client.get("/redoc.standalone.js") as response:
        assert response.status == 200 and response.content_type == "text/javascript"
        assert len(await response.read()) > 500_000
        assert "max-age" in response.headers["Cache-Control"] and "ETag" in response.headers


async def test_chromium_shows_every_operation_and_asks_no_other_site(client, browser):
    origin = str(client.make_url("/")).rstrip("/")
    page = await browser.new_page()
    asked: list[str] = []
    fetched: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on("response", lambda response: fetched.append(response.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    await page.goto(f"{origin}/docs")
    # Redoc has fetched /openapi.json and rendered it: each operation's summary is on the page.
    for summary in ("Register a user", "Log in", "Log out", "Email a password-reset link", "Liveness"):
        await page.get_by_text(summary, exact=True).first.wait_for(state="attached", timeout=30_000)
    assert await page.title() == "userreg registration API"
    await page.get_by_role("textbox").first.fill("login")  # Redoc's search, in its blob: worker
    await page.get_by_text("Log in", exact=True).first.wait_for(timeout=10_000)
    # The one thing Redoc would fetch from elsewhere, its sidebar's Redocly logo, the policy refuses.
    refused = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert all(refused in problem and "Content Security Policy" in problem for problem in problems), problems
    assert [url for url in asked if urlsplit(url).scheme in ("http", "https") and not url.startswith(f"{origin}/")] in (
        [],
        [refused],
    )
    assert [url for url in fetched if not url.startswith((f"{origin}/", f"blob:{origin}/"))] == []
    assert f"{origin}/openapi.json" in asked and f"{origin}/redoc.standalone.js" in asked
    await page.close()
