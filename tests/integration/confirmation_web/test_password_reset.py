"""The password-reset pages (docs/api.md, Sessions and password recovery) against the real database:
the form a link opens (a GET changes nothing), the POST that sets the password (argon2id, every
session and reset link ended, `user.password_changed`, a pending user confirmed), its refusals, and
one change however many POSTs race."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from argon2.exceptions import VerifyMismatchError

from tests.integration.confirmation_web.conftest import CHEAP_HASHER, OLD_PASSWORD
from tests.integration.confirmation_web.support import data_page, wait_for_event_types, wait_for_events
from userreg.confirmation_web.app import create_app
from userreg.shared.db import App, Template, User, UserStatus
from userreg.shared.events import USER_CONFIRMED, USER_PASSWORD_CHANGED, USER_PASSWORD_RESET_REQUESTED
from userreg.shared.hashing import HashingBusy
from userreg.shared.passwords import request_password_reset
from userreg.shared.tokens import new_guid, new_token

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends from our page
NEW_PASSWORD = "a brand-new passphrase"


async def fetch(http, url, method="GET", **kwargs):
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, response.headers, await response.text()


async def post(http, url, data, headers=SAME_ORIGIN):
    return await fetch(http, url, "POST", data=data, headers=headers)


def form(token: str, password: str = NEW_PASSWORD, repeat: str | None = None) -> dict[str, str]:
    return {"token": token, "password": password, "repeat": password if repeat is None else repeat}


def is_hash_of(password_hash: str, password: str) -> bool:
    """What a login checks: does the stored argon2id hash verify this password?"""
    try:
        return CHEAP_HASHER.verify(password_hash, password)
    except VerifyMismatchError:
        return False


@pytest.mark.usefixtures("server")
async def test_a_reset_link_shows_the_form_and_a_get_changes_nothing(
    make_app, make_reset_link, make_session, http, url, account_of, outbox_of
):
    app = await make_app("Reset Co")
    link = await make_reset_link(app)
    await make_session(link.user_id)
    before = await account_of(link.user_id)
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; SafeLinks/1.0)", "Accept": "*/*"}
    for _ in range(3):
        status, headers, html = await fetch(http, url(link.path), headers=scanner)
        assert (status, data_page(html)) == (200, "password-reset")
        status, headers, body = await fetch(http, url(link.path), method="HEAD", headers=scanner)
        assert status == 200 and body == "" and headers["Cache-Control"] == "no-store"
    _, headers, html = await fetch(http, url(link.path))
    assert "Reset Co" in html and link.email in html and "Choose a new password" in html
    assert f'action="/{app.app_id}/reset-password"' in html
    assert f'<input type="hidden" name="token" value="{link.token}">' in html
    assert (
        len(
            re.findall(
                r'<input type="password" name="(?:password|repeat)" autocomplete="new-password" '
                r'required maxlength="1024"',
                html,
            )
        )
        == 2
    )
    assert await account_of(link.user_id) == before and before[1:] == (1, 1)
    assert await outbox_of(link.user_id) == []


@pytest.mark.usefixtures("server")
async def test_the_form_is_overridable_apart_from_the_email_of_the_same_name(
    make_app, make_reset_link, sessions, http, url
):
    app = await make_app("Reset Co")
    link = await make_reset_link(app)
    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="password-reset",
                locale="",
                subject="Reset",
                html_body="<p>the email's HTML</p>",
            )
        )
    _, _, html = await fetch(http, url(link.path))
    assert data_page(html) == "password-reset" and "Choose a new password" in html
    assert "the email's HTML" not in html, "an override of the email is not the page's"

    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="page",
                name="password-reset",
                locale="",
                html_body='<body data-page="{{ page }}">Our own form for {{ identity_value }}'
                "{% if password_problem %}: {{ password_problem }}{% endif %}</body>",
            )
        )
    status, _, html = await fetch(http, url(link.path))  # no restart
    assert (status, html) == (200, f'<body data-page="password-reset">Our own form for {link.email}</body>')
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(link.token, repeat="other"))
    assert (status, html) == (400, f'<body data-page="password-reset">Our own form for {link.email}: mismatch</body>')


@pytest.mark.usefixtures("server")
async def test_the_post_sets_the_password_and_ends_every_session_and_reset_link(
    make_app, make_reset_link, make_session, http, url, account_of, outbox_payloads_of, user_status
):
    app = await make_app()
    link = await make_reset_link(app)
    other_link = await make_reset_link(app, user_id=link.user_id)
    for _ in range(2):
        await make_session(link.user_id)
    status, headers, html = await post(http, url(f"/{app.app_id}/reset-password"), form(link.token))
    assert (status, data_page(html)) == (200, "password-reset-done")
    assert "Your password has been changed" in html and link.email in html
    assert "confirmed too" not in html and link.token not in html
    assert headers["Cache-Control"] == "no-store"

    password_hash, live_sessions, reset_links = await account_of(link.user_id)
    assert password_hash.startswith("$argon2id$")
    assert is_hash_of(password_hash, NEW_PASSWORD) and not is_hash_of(password_hash, OLD_PASSWORD)
    assert (live_sessions, reset_links) == (0, 0)
    assert await user_status(link.user_id) is UserStatus.ENABLED
    [event] = await outbox_payloads_of(link.user_id)
    assert event["type"] == USER_PASSWORD_CHANGED and event["user"]["identity"] == link.email
    assert NEW_PASSWORD not in str(event) and password_hash not in str(event)

    # Single use, and the user's other links ended with it.
    for path in (link.path, other_link.path):
        status, _, html = await fetch(http, url(path))
        assert (status, data_page(html)) == (404, "password-reset-failed")
        assert "was used already" in html
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(other_link.token, "again"))
    assert (status, data_page(html)) == (404, "password-reset-failed")
    assert (await account_of(link.user_id))[0] == password_hash
    assert len(await outbox_payloads_of(link.user_id)) == 1


@pytest.mark.usefixtures("server", "relay")
async def test_a_pending_user_who_resets_is_confirmed_and_the_events_are_published(
    make_app, http, url, settings, sessions, user_status, event_queue, outbox_of, account_of
):
    """The whole flow's events: the link as `restorepassword` issues it, then the reset."""
    app = await make_app("Pending Reset", email_confirmation_required=True)
    async with sessions() as session, session.begin():
        db_app = await session.get(App, app.app_id)
        user = User(
            object_id=new_guid(),
            app_id=app.app_id,
            identity_key="pending@example.com",
            properties={"email": "pending@example.com", "blUserLocale": "en"},
            password_hash=CHEAP_HASHER.hash(OLD_PASSWORD),
            status=UserStatus.EMAIL_CONFIRMATION_PENDING,
        )
        session.add(user)
        await session.flush()
        await request_password_reset(session, db_app, user, settings.public_confirmation_url, 60)
    [requested] = await wait_for_events(event_queue, user.object_id, USER_PASSWORD_RESET_REQUESTED, outbox_of)
    reset_url = requested["passwordReset"]["url"]
    assert requested["confirmation"] is None
    assert reset_url.startswith(f"{settings.public_confirmation_url}/{app.app_id}/reset-password/")
    token = reset_url.rsplit("/", 1)[1]

    status, _, html = await fetch(http, url(reset_url.removeprefix(settings.public_confirmation_url)))
    assert (status, data_page(html)) == (200, "password-reset")
    assert await user_status(user.object_id) is UserStatus.EMAIL_CONFIRMATION_PENDING

    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(token))
    assert (status, data_page(html)) == (200, "password-reset-done")
    assert "Your email address is confirmed too" in html
    assert await user_status(user.object_id) is UserStatus.ENABLED
    assert is_hash_of((await account_of(user.object_id))[0], NEW_PASSWORD)
    published = await wait_for_event_types(
        event_queue, user.object_id, {USER_PASSWORD_CHANGED, USER_CONFIRMED}, outbox_of
    )
    assert sorted(published) == [USER_CONFIRMED, USER_PASSWORD_CHANGED]  # and no other
    [changed], [confirmed] = published[USER_PASSWORD_CHANGED], published[USER_CONFIRMED]
    for event in (changed, confirmed):
        assert event["appId"] == app.app_id and event["user"]["email"] == "pending@example.com"
        assert event["confirmation"] is None and event["passwordReset"] is None
        assert token not in str(event) and NEW_PASSWORD not in str(event)


@pytest.mark.usefixtures("server")
async def test_a_disabled_user_gets_the_failed_page_and_nothing_changes(
    make_app, make_reset_link, make_session, http, url, account_of, outbox_of, user_status
):
    app = await make_app()
    link = await make_reset_link(app, status=UserStatus.DISABLED)
    expired = await make_reset_link(app, user_id=link.user_id, expired=True)
    await make_session(link.user_id)
    before = await account_of(link.user_id)
    for path in (link.path, expired.path):
        status, _, html = await fetch(http, url(path))
        assert (status, data_page(html)) == (404, "password-reset-failed")
        assert "This account is disabled" in html and 'name="token"' not in html
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(link.token))
    assert (status, data_page(html)) == (404, "password-reset-failed")
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password/resend"), {"token": expired.token})
    assert (status, data_page(html)) == (404, "password-reset-failed")
    assert await account_of(link.user_id) == before
    assert await user_status(link.user_id) is UserStatus.DISABLED
    assert await outbox_of(link.user_id) == []


@pytest.mark.usefixtures("server")
async def test_an_expired_link_changes_nothing_and_offers_a_new_link_with_its_cool_down(
    make_app, make_reset_link, http, url, settings, account_of, outbox_payloads_of
):
    app = await make_app("Expiry Ltd")
    link = await make_reset_link(app, expired=True)
    before = await account_of(link.user_id)
    status, _, html = await fetch(http, url(link.path))
    assert (status, data_page(html)) == (410, "password-reset-expired")
    assert f'action="/{app.app_id}/reset-password/resend"' in html and "Send a new link" in html
    assert f'name="token" value="{link.token}"' in html and 'type="password"' not in html
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(link.token))
    assert (status, data_page(html)) == (410, "password-reset-expired")
    assert await account_of(link.user_id) == before

    resend = url(f"/{app.app_id}/reset-password/resend")
    status, _, html = await post(http, resend, {"token": link.token})
    assert (status, data_page(html)) == (200, "password-reset-expired")
    assert "We sent a new password-reset link" in html and link.email in html
    assert 'name="token"' not in html
    [event] = await outbox_payloads_of(link.user_id)
    assert event["type"] == USER_PASSWORD_RESET_REQUESTED
    assert (await account_of(link.user_id))[2] == 2

    status, headers, html = await post(http, resend, {"token": link.token})
    assert (status, data_page(html)) == (429, "password-reset-expired")
    retry_after = int(headers["Retry-After"])
    assert 0 < retry_after <= settings.resend_cooldown_seconds
    assert f"try again in {retry_after} seconds" in html and "Send a new link" in html
    assert len(await outbox_payloads_of(link.user_id)) == 1

    # The emailed link works; the old one stays expired.
    new_path = event["passwordReset"]["url"].removeprefix(settings.public_confirmation_url)
    status, _, html = await fetch(http, url(new_path))
    assert (status, data_page(html)) == (200, "password-reset")
    status, _, _ = await fetch(http, url(link.path))
    assert status == 410


@pytest.mark.usefixtures("server")
async def test_the_cool_down_counts_from_the_last_reset_link_issued(
    make_app, make_reset_link, http, url, settings, account_of
):
    app = await make_app()
    resend = url(f"/{app.app_id}/reset-password/resend")
    expired = await make_reset_link(app, expired=True)
    # The user asked `restorepassword` for a link 10 s ago.
    await make_reset_link(app, user_id=expired.user_id, issued_ago=timedelta(seconds=10))
    status, _, _ = await post(http, resend, {"token": expired.token})
    assert status == 429
    assert (await account_of(expired.user_id))[2] == 2

    old = await make_reset_link(app, expired=True)
    await make_reset_link(app, user_id=old.user_id, issued_ago=timedelta(seconds=settings.resend_cooldown_seconds + 5))
    assert (await post(http, resend, {"token": old.token}))[0] == 200
    assert (await account_of(old.user_id))[2] == 3


@pytest.mark.usefixtures("server")
@pytest.mark.parametrize(
    ("password", "repeat", "message"),
    [
        ("", "", "Please enter a new password."),
        ("x" * 1025, "x" * 1025, "at most 1024 characters"),
        ("x" * 5000, "x" * 5000, "at most 1024 characters"),
        (NEW_PASSWORD, NEW_PASSWORD + " ", "did not match"),
        (NEW_PASSWORD, "", "did not match"),
        ("nul\x00inside", "nul\x00inside", "cannot be used"),
    ],
)
async def test_a_refused_password_shows_the_form_again_with_a_message(
    make_app, make_reset_link, make_session, http, url, account_of, outbox_of, password, repeat, message
):
    app = await make_app()
    link = await make_reset_link(app)
    await make_session(link.user_id)
    before = await account_of(link.user_id)
    endpoint = url(f"/{app.app_id}/reset-password")
    status, _, html = await post(http, endpoint, form(link.token, password, repeat))
    assert (status, data_page(html)) == (400, "password-reset")
    assert message in html and 'role="alert"' in html
    assert f'name="token" value="{link.token}"' in html  # the form again, for the same link
    assert not password or password not in html
    assert await account_of(link.user_id) == before
    assert await outbox_of(link.user_id) == []


@pytest.mark.usefixtures("server")
async def test_the_longest_password_is_accepted_whatever_its_characters(
    make_app, make_reset_link, http, url, account_of
):
    app = await make_app()
    link = await make_reset_link(app)
    longest = "🔑" * 1024  # four UTF-8 bytes each: 12 KiB a field once percent-encoded
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(link.token, longest))
    assert (status, data_page(html)) == (200, "password-reset-done")
    assert is_hash_of((await account_of(link.user_id))[0], longest)


@pytest.mark.usefixtures("server")
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
    ],
)
async def test_cross_site_posts_are_refused(make_app, make_reset_link, http, url, account_of, outbox_of, headers):
    app = await make_app()
    link = await make_reset_link(app)
    expired = await make_reset_link(app, user_id=link.user_id, expired=True)
    before = await account_of(link.user_id)
    endpoint = url(f"/{app.app_id}/reset-password")
    status, _, html = await post(http, endpoint, form(link.token), headers=headers)
    assert (status, data_page(html)) == (403, "password-reset-failed")
    assert "did not come from the password-reset page" in html
    status, _, html = await post(
        http, url(f"/{app.app_id}/reset-password/resend"), {"token": expired.token}, headers=headers
    )
    assert (status, data_page(html)) == (403, "password-reset-failed")
    assert await account_of(link.user_id) == before
    assert await outbox_of(link.user_id) == []


@pytest.mark.usefixtures("server")
async def test_a_post_from_the_public_origin_is_accepted(make_app, make_reset_link, http, url, settings, account_of):
    app = await make_app()
    link = await make_reset_link(app)
    status, _, _ = await post(
        http,
        url(f"/{app.app_id}/reset-password"),
        form(link.token),
        headers={"Origin": settings.public_confirmation_url},
    )
    assert status == 200
    assert is_hash_of((await account_of(link.user_id))[0], NEW_PASSWORD)


@pytest.mark.usefixtures("server")
async def test_unknown_malformed_and_foreign_tokens_get_the_failed_page(
    make_app, make_reset_link, make_link, http, url, account_of
):
    app = await make_app("Owner", email_confirmation_required=True)
    other = await make_app("Other")
    link = await make_reset_link(app)
    confirmation = await make_link(app)  # a confirmation token is no reset token
    before = await account_of(link.user_id)
    for app_id, token in (
        (app.app_id, "short"),
        (app.app_id, link.token[:-1]),
        (app.app_id, new_token()),
        (other.app_id, link.token),
        (app.app_id, confirmation.token),
    ):
        status, headers, html = await fetch(http, url(f"/{app_id}/reset-password/{token}"))
        assert (status, data_page(html)) == (404, "password-reset-failed"), token
        assert headers["Cache-Control"] == "no-store"
        status, _, html = await post(http, url(f"/{app_id}/reset-password"), form(token))
        assert (status, data_page(html)) == (404, "password-reset-failed"), token
        status, _, html = await post(http, url(f"/{app_id}/reset-password/resend"), {"token": token})
        assert (status, data_page(html)) == (404, "password-reset-failed"), token
    status, _, html = await fetch(http, url(f"/{other.app_id}/reset-password/{link.token}"))
    assert "Other" in html and link.email not in html
    status, _, html = await fetch(http, url(f"/{app.app_id}/reset-password"))
    assert (status, data_page(html)) == (404, "password-reset-failed")
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), {})
    assert (status, data_page(html)) == (404, "password-reset-failed")
    assert await account_of(link.user_id) == before


@pytest.mark.usefixtures("server")
async def test_security_headers_and_own_assets_on_every_reset_page(make_app, make_reset_link, http, url):
    app = await make_app()
    links = [
        await make_reset_link(app),
        await make_reset_link(app, expired=True),
        await make_reset_link(app, status=UserStatus.DISABLED),
    ]
    answers = [await fetch(http, url(link.path)) for link in links]
    answers.append(await post(http, url(f"/{app.app_id}/reset-password"), form(links[0].token)))
    assert [data_page(html) for _, _, html in answers] == [
        "password-reset",
        "password-reset-expired",
        "password-reset-failed",
        "password-reset-done",
    ]
    for _, headers, html in answers:
        for name, value in {
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        }.items():
            assert headers[name] == value
        csp = headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "form-action 'self'" in csp and "'nonce-" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        for reference in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert reference.startswith(("/", "data:")), reference


@pytest.mark.usefixtures("server")
async def test_reset_pages_speak_the_users_language_then_the_browsers(make_app, make_reset_link, http, url):
    app = await make_app()
    german = await make_reset_link(app, properties={"blUserLocale": "de"})
    _, _, html = await fetch(http, url(german.path), headers={"Accept-Language": "en-US,en"})
    assert '<html lang="de">' in html and "Neues Passwort festlegen" in html
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(german.token, "a", "b"))
    assert status == 400 and "stimmen nicht überein" in html
    _, _, html = await fetch(
        http, url(f"/{app.app_id}/reset-password/{new_token()}"), headers={"Accept-Language": "de-CH"}
    )
    assert '<html lang="de">' in html and "Dieser Link funktioniert nicht" in html
    status, _, html = await post(http, url(f"/{app.app_id}/reset-password"), form(german.token))
    assert status == 200 and "Ihr Passwort wurde geändert" in html


@pytest.mark.usefixtures("server")
async def test_identity_and_app_name_are_escaped(make_app, make_reset_link, http, url):
    app = await make_app('<img src=x onerror="alert(1)">')
    link = await make_reset_link(app, properties={"name": "<script>alert(2)</script>"})
    _, _, html = await fetch(http, url(link.path))
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "<script>alert" not in html


async def test_concurrent_posts_of_one_link_change_the_password_once(
    settings, make_app, make_reset_link, account_of, outbox_payloads_of
):
    app = await make_app()
    link = await make_reset_link(app)
    test_server = TestServer(create_app(settings, run_outbox_relay=False), host="127.0.0.1")
    await test_server.start_server()
    try:
        endpoint = str(test_server.make_url(f"/{app.app_id}/reset-password"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as http:
            results = await asyncio.gather(*(post(http, endpoint, form(link.token, f"password {i}")) for i in range(6)))
    finally:
        await test_server.close()
    done = [i for i, (status, _, html) in enumerate(results) if data_page(html) == "password-reset-done"]
    assert len(done) == 1, [(status, data_page(html)) for status, _, html in results]
    assert {(status, data_page(html)) for i, (status, _, html) in enumerate(results) if i not in done} == {
        (404, "password-reset-failed")
    }
    assert is_hash_of((await account_of(link.user_id))[0], f"password {done[0]}")
    assert [event["type"] for event in await outbox_payloads_of(link.user_id)] == [USER_PASSWORD_CHANGED]


async def test_concurrent_posts_of_two_links_of_one_user_change_the_password_once(
    settings, make_app, make_reset_link, account_of, outbox_payloads_of
):
    """Each reset holds the user's row before the token's, so two links of one user never deadlock:
    the first changes the password and ends the other link, which then finds itself used."""
    app = await make_app()
    first = await make_reset_link(app)
    links = [first, *[await make_reset_link(app, user_id=first.user_id) for _ in range(3)]]
    test_server = TestServer(create_app(settings, run_outbox_relay=False), host="127.0.0.1")
    await test_server.start_server()
    try:
        endpoint = str(test_server.make_url(f"/{app.app_id}/reset-password"))
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as http:
            results = await asyncio.gather(
                *(post(http, endpoint, form(links[i % 4].token, f"password {i}")) for i in range(8))
            )
    finally:
        await test_server.close()
    pages = sorted((status, data_page(html)) for status, _, html in results)
    assert pages == [(200, "password-reset-done")] + [(404, "password-reset-failed")] * 7
    assert (await account_of(first.user_id))[1:] == (0, 0)
    assert [event["type"] for event in await outbox_payloads_of(first.user_id)] == [USER_PASSWORD_CHANGED]


class FullHashing:
    """The hashing workers with a full queue: every hash is refused at once (`HashingBusy`)."""

    async def hash(self, password: str) -> str:
        raise HashingBusy(1.2)


async def test_a_full_hashing_queue_answers_503_and_changes_nothing(
    settings, make_app, make_reset_link, account_of, outbox_of
):
    app = await make_app()
    link = await make_reset_link(app)
    before = await account_of(link.user_id)
    test_server = TestServer(create_app(settings, run_outbox_relay=False, hashing=FullHashing()), host="127.0.0.1")
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            endpoint = str(test_server.make_url(f"/{app.app_id}/reset-password"))
            status, headers, html = await post(http, endpoint, form(link.token))
            assert (status, data_page(html)) == (503, "password-reset")
            assert headers["Retry-After"] == "2" and "try again in 2 seconds" in html
            assert headers["Cache-Control"] == "no-store"
            assert f'name="token" value="{link.token}"' in html
            status, _, html = await fetch(http, str(test_server.make_url(link.path)))
            assert (status, data_page(html)) == (200, "password-reset")  # the link still works
    finally:
        await test_server.close()
    assert await account_of(link.user_id) == before
    assert await outbox_of(link.user_id) == []
