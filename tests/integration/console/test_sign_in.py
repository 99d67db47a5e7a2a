"""Signing in and out of the console: the session cookie, the generic refusal, the rate limit,
the redirect of a signed-out request, and the checks every POST passes (CSRF token, same origin)."""

from __future__ import annotations

import random
import uuid

import aiohttp
import pytest
from sqlalchemy import func, select

from tests.integration.console.conftest import PASSWORD
from userreg.console.rules.csrf import csrf_token
from userreg.console.service.operators import SignInLimits
from userreg.shared.db.models import Operator, OperatorSession
from userreg.shared.hashing import HashingBusy
from userreg.shared.ratelimits import RateLimit
from userreg.shared.tokens import hash_token


async def test_signing_in_opens_a_session(anonymous, operator, sessions):
    page = await anonymous.sign_in(operator.email, operator.password)
    assert page.status == 200 and page.url.endswith("/apps")
    assert 'data-page="apps"' in page.text and operator.email in page.text
    token = anonymous.session_token
    async with sessions() as session:
        stored = await session.scalar(select(OperatorSession).where(OperatorSession.token_hash == hash_token(token)))
        signed_in_at = await session.scalar(
            select(Operator.last_sign_in_at).where(Operator.operator_id == operator.operator_id)
        )
    assert stored is not None and stored.operator_id == operator.operator_id
    assert signed_in_at is not None


async def test_the_cookie_is_http_only_and_same_site_strict(anonymous, operator):
    page = await anonymous.post(
        "/sign-in", {"email": operator.email, "password": operator.password}, csrf=False, follow=False
    )
    assert page.status == 303 and page.headers["Location"] == "/apps"
    cookie = page.headers["Set-Cookie"]
    assert cookie.startswith("userreg_console=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # served over http here


async def test_behind_a_trusted_https_proxy_the_cookie_is_secure(start_console, operator):
    base_url = await start_console({"trusted_proxies": "127.0.0.1/32"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/sign-in",
            allow_redirects=False,
            headers={"X-Forwarded-Proto": "https"},
            data={"email": operator.email, "password": operator.password},
        ) as response,
    ):
        assert response.status == 303
        assert "Secure" in response.headers["Set-Cookie"]


async def test_an_untrusted_peers_forwarded_proto_is_ignored(anonymous, operator):
    page = await anonymous.post(
        "/sign-in",
        {"email": operator.email, "password": operator.password},
        csrf=False,
        follow=False,
        headers={"X-Forwarded-Proto": "https"},
    )
    assert page.status == 303 and "Secure" not in page.headers["Set-Cookie"]


@pytest.mark.parametrize("wrong", ["password", "email"])
async def test_a_wrong_email_or_password_gets_the_same_answer(anonymous, operator, wrong):
    email = operator.email if wrong == "password" else f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    password = "not the password" if wrong == "password" else operator.password
    page = await anonymous.sign_in(email, password)
    assert page.status == 401
    assert "Email or password wrong." in page.text
    assert "userreg_console" not in {cookie.key for cookie in anonymous.http.cookie_jar}


async def test_the_email_is_compared_case_insensitively(anonymous, operator):
    page = await anonymous.sign_in(operator.email.upper(), operator.password)
    assert page.status == 200 and 'data-page="apps"' in page.text


async def test_too_many_sign_ins_from_one_address_are_refused(start_console, operator):
    """The limit counts attempts per client address: past it, even the right password is refused
    (429, Retry-After) without being checked."""
    base_url = await start_console(
        {"trusted_proxies": "127.0.0.1/32"},
        sign_in_limits=SignInLimits(per_address=RateLimit(3, 900), per_email=RateLimit(1000, 900)),
    )
    client_address = f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        statuses = []
        for password in ("wrong 1", "wrong 2", "wrong 3", operator.password):
            async with http.post(
                f"{base_url}/sign-in",
                allow_redirects=False,
                headers={"X-Forwarded-For": client_address},
                data={"email": operator.email, "password": password},
            ) as response:
                statuses.append(response.status)
                text = await response.text()
                retry_after = response.headers.get("Retry-After")
    assert statuses == [401, 401, 401, 429]
    assert "Too many sign-in attempts" in text and int(retry_after) > 0


async def test_too_many_sign_ins_for_one_email_are_refused(start_console, operator):
    base_url = await start_console(
        sign_in_limits=SignInLimits(per_address=RateLimit(100_000, 900), per_email=RateLimit(2, 900))
    )
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        statuses = []
        for password in ("wrong 1", "wrong 2", operator.password):
            async with http.post(
                f"{base_url}/sign-in", allow_redirects=False, data={"email": operator.email, "password": password}
            ) as response:
                statuses.append(response.status)
    assert statuses == [401, 401, 429]


@pytest.mark.parametrize("path", ["/apps", "/system", "/audit", "/apps/NO-SUCH-APP/registration", "/nowhere"])
async def test_a_signed_out_request_gets_the_sign_in_page(anonymous, path):
    page = await anonymous.get(path, follow=False)
    assert page.status == 303
    assert page.headers["Location"].startswith("/sign-in?next=")
    page = await anonymous.get(path)
    assert page.status == 200 and 'data-page="sign-in"' in page.text


async def test_signing_in_returns_to_the_page_asked_for(anonymous, operator):
    await anonymous.get("/audit")
    page = await anonymous.post(
        "/sign-in", {"email": operator.email, "password": operator.password, "next": "/audit"}, csrf=False
    )
    assert page.url.endswith("/audit") and 'data-page="audit"' in page.text


async def test_signing_in_never_redirects_to_another_site(anonymous, operator):
    page = await anonymous.post(
        "/sign-in",
        {"email": operator.email, "password": operator.password, "next": "//evil.example/"},
        csrf=False,
        follow=False,
    )
    assert page.headers["Location"] == "/apps"


async def test_a_signed_out_post_changes_nothing(anonymous, make_app, sessions):
    app = await make_app("Kept")
    page = await anonymous.post(f"/apps/{app.app_id}/delete", {"confirm_name": "Kept"}, csrf=False, follow=False)
    assert page.status == 303 and page.headers["Location"] == "/sign-in"


async def test_a_form_without_its_csrf_token_is_refused(client, make_app):
    app = await make_app("Kept")
    page = await client.post(f"/apps/{app.app_id}/delete", {"confirm_name": "Kept"}, csrf=False)
    assert page.status == 403 and "Form refused" in page.text
    page = await client.post(f"/apps/{app.app_id}/delete", {"confirm_name": "Kept", "csrf_token": "forged"}, csrf=False)
    assert page.status == 403
    assert (await client.get(f"/apps/{app.app_id}/delete")).status == 200  # still there


async def test_another_sessions_csrf_token_is_refused(client, make_app):
    app = await make_app("Kept")
    page = await client.post(
        f"/apps/{app.app_id}/delete",
        {"confirm_name": "Kept", "csrf_token": csrf_token("another session's token")},
        csrf=False,
    )
    assert page.status == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "https://sub.example"},
    ],
)
async def test_a_cross_site_post_is_refused(client, make_app, headers):
    app = await make_app("Kept")
    page = await client.post(f"/apps/{app.app_id}/delete", {"confirm_name": "Kept"}, headers=headers)
    assert page.status == 403
    assert (await client.get(f"/apps/{app.app_id}/delete")).status == 200


async def test_a_same_origin_post_is_accepted(client, console_url, make_app):
    app = await make_app("Gone")
    page = await client.post(
        f"/apps/{app.app_id}/delete",
        {"confirm_name": "Gone"},
        headers={"Origin": console_url, "Sec-Fetch-Site": "same-origin"},
    )
    assert page.status == 200 and "The app was deleted." in page.text


async def test_a_cross_site_sign_in_is_refused(anonymous, operator):
    page = await anonymous.post(
        "/sign-in",
        {"email": operator.email, "password": PASSWORD},
        csrf=False,
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert page.status == 403


async def test_signing_out_ends_the_session(client, sessions):
    token = client.session_token
    page = await client.post("/sign-out")
    assert page.status == 200 and 'data-page="sign-in"' in page.text
    async with sessions() as session:
        assert await session.scalar(select(func.count()).where(OperatorSession.token_hash == hash_token(token))) == 0
    assert (await client.get("/apps", follow=False)).status == 303


async def test_signing_out_needs_the_csrf_token(client):
    page = await client.post("/sign-out", csrf=False)
    assert page.status == 403
    assert (await client.get("/apps")).status == 200


async def test_an_idle_session_is_over(client, sessions):
    token = client.session_token
    async with sessions() as session, session.begin():
        row = await session.get(OperatorSession, hash_token(token))
        row.last_used_at = row.last_used_at.replace(year=row.last_used_at.year - 1)
    page = await client.get("/apps", follow=False)
    assert page.status == 303 and page.headers["Location"].startswith("/sign-in")


async def test_pages_carry_the_security_headers(client, anonymous):
    for page in (await client.get("/apps"), await anonymous.get("/sign-in")):
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self' 'nonce-" in csp
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert page.headers["Cache-Control"] == "no-store"
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"


async def test_health_and_ready_are_public(anonymous):
    assert (await anonymous.get("/health")).status == 200
    ready = await anonymous.get("/ready")
    assert ready.status == 200 and '"database": "ok"' in ready.text


async def test_an_unknown_page_is_a_not_found_page(client):
    page = await client.get("/nowhere")
    assert page.status == 404 and "Not found" in page.text and 'data-page="error"' in page.text


class BusyHashing:
    """A hashing pool whose queue is full."""

    async def verify(self, password_hash, password):
        raise HashingBusy(2.5)


async def test_a_full_hashing_queue_is_said_so(start_console, operator):
    base_url = await start_console(hashing=BusyHashing())
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{base_url}/sign-in", allow_redirects=False, data={"email": operator.email, "password": operator.password}
        ) as response,
    ):
        assert response.status == 503 and response.headers["Retry-After"] == "3"
        assert "The console is busy" in await response.text()
