"""Opening links: every page with its status code and headers, against the real database."""

from __future__ import annotations

import hashlib
import logging
import re

import pytest
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from sqlalchemy import delete

from tests.integration.confirmation_web.support import data_page
from tests.support.polling import free_port
from userreg.confirmation_web.app import create_app
from userreg.shared.db import Template, UserStatus
from userreg.shared.tokens import new_token

pytestmark = pytest.mark.usefixtures("server")

PAGE_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


async def fetch(http, url, method="GET", **kwargs):
    async with http.request(method, url, allow_redirects=False, **kwargs) as response:
        return response.status, response.headers, await response.text()


async def test_pending_link_shows_the_pending_page_and_does_not_confirm(
    make_app, make_link, http, url, user_status, outbox_of
):
    app = await make_app("Pending Co", email_confirmation_required=True)
    link = await make_link(app)
    status, _, html = await fetch(http, url(link.path))
    assert status == 200
    assert data_page(html) == "confirmation-pending"
    assert "Pending Co" in html and link.email in html
    # The form posts the token itself to our own confirm endpoint.
    assert f'action="/{app.app_id}/confirm"' in html
    assert f'name="token" value="{link.token}"' in html
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING
    assert await outbox_of(link.user_id) == []


async def test_scanner_get_and_head_never_confirm(make_app, make_link, http, url, user_status):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    scanner = {"User-Agent": "Mozilla/5.0 (compatible; SafeLinks/1.0)", "Accept": "*/*"}
    for _ in range(3):
        status, _, _ = await fetch(http, url(link.path), headers=scanner)
        assert status == 200
        status, headers, body = await fetch(http, url(link.path), method="HEAD", headers=scanner)
        assert status == 200 and body == ""
        assert headers["Cache-Control"] == "no-store"
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING


async def test_confirm_on_get_app_confirms_on_a_get_but_never_on_head(
    make_app, make_link, http, url, user_status, outbox_of
):
    app = await make_app(email_confirmation_required=True, confirm_on_get=True)
    link = await make_link(app)
    status, _, _ = await fetch(http, url(link.path), method="HEAD")
    assert status == 200
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING
    _, _, html = await fetch(http, url(link.path), headers={"Sec-Purpose": "prefetch"})
    assert data_page(html) == "confirmation-pending"
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING

    status, _, html = await fetch(http, url(link.path))
    assert (status, data_page(html)) == (200, "confirmation-confirmed")
    assert await user_status(link.user_id) is UserStatus.ENABLED


async def test_expired_link_of_a_pending_user_is_gone(make_app, make_link, http, url, user_status):
    app = await make_app("Expiry Inc", email_confirmation_required=True)
    link = await make_link(app, expired=True)
    status, _, html = await fetch(http, url(link.path))
    assert (status, data_page(html)) == (410, "confirmation-expired")
    assert f'action="/{app.app_id}/confirm/resend"' in html
    assert "Send a new link" in html
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING


async def test_disabled_user_sees_the_disabled_page_whatever_the_link(make_app, make_link, http, url):
    app = await make_app(email_confirmation_required=True)
    fresh = await make_link(app, status=UserStatus.DISABLED)
    stale = await make_link(app, expired=True, user_id=fresh.user_id)
    for path in (fresh.path, stale.path):
        status, _, html = await fetch(http, url(path))
        assert (status, data_page(html)) == (403, "confirmation-disabled")
        assert 'name="token"' not in html


async def test_every_link_of_a_confirmed_user_shows_the_confirmed_page(make_app, make_link, http, url):
    app = await make_app(email_confirmation_required=True)
    first = await make_link(app, status=UserStatus.ENABLED, expired=True)
    second = await make_link(app, user_id=first.user_id)
    for path in (first.path, second.path, first.path):
        status, _, html = await fetch(http, url(path))
        assert (status, data_page(html)) == (200, "confirmation-confirmed")
        assert "already confirmed" in html
        assert first.token not in html and second.token not in html


@pytest.mark.parametrize(
    "token",
    [
        "short",
        "x" * 44,
        "has.a.dot.in.it_____________________________",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E_________",
        "Z" * 43 + "%00",
    ],
)
async def test_malformed_tokens_fail(make_app, http, url, token):
    app = await make_app("Malformed Ltd")
    status, headers, html = await fetch(http, url(f"/{app.app_id}/confirm/{token}"))
    assert (status, data_page(html)) == (404, "confirmation-failed")
    assert "Malformed Ltd" in html  # the app of the path is known even if the token is not
    assert "<script>alert" not in html
    for name, value in PAGE_HEADERS.items():
        assert headers[name] == value


async def test_unknown_well_formed_token_fails(make_app, http, url):
    app = await make_app()
    status, _, html = await fetch(http, url(f"/{app.app_id}/confirm/{new_token()}"))
    assert (status, data_page(html)) == (404, "confirmation-failed")


async def test_a_valid_looking_prefix_or_variant_of_a_real_token_fails(make_app, make_link, http, url, user_status):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    prefix = link.token[:-1]
    variants = [
        prefix,  # a prefix of the real token
        prefix + ("A" if link.token[-1] != "A" else "B"),  # the same but for its last character
        link.token.swapcase(),  # tokens are case-sensitive
        hashlib.sha256(link.token.encode()).hexdigest()[:43],  # a prefix of its stored hash
    ]
    for token in variants:
        status, _, html = await fetch(http, url(f"/{app.app_id}/confirm/{token}"))
        assert (status, data_page(html)) == (404, "confirmation-failed"), token
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING


async def test_token_of_another_app_fails(make_app, make_link, http, url, user_status):
    owner = await make_app("Owner", email_confirmation_required=True)
    other = await make_app("Other", email_confirmation_required=True)
    link = await make_link(owner)
    status, _, html = await fetch(http, url(f"/{other.app_id}/confirm/{link.token}"))
    assert (status, data_page(html)) == (404, "confirmation-failed")
    assert "Other" in html and link.email not in html
    status, _, _ = await fetch(http, url(f"/{other.app_id}/confirm"), method="POST", data={"token": link.token})
    assert status == 404
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING


async def test_lower_case_app_id_in_a_link_still_works(make_app, make_link, http, url):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    status, _, html = await fetch(http, url(f"/{app.app_id.lower()}/confirm/{link.token}"))
    assert (status, data_page(html)) == (200, "confirmation-pending")


async def test_unknown_app_and_other_paths_show_the_failed_page(http, url):
    for path in ("/NOT-AN-APP/confirm/" + new_token(), "/", "/whatever/else", "/A/confirm"):
        status, headers, html = await fetch(http, url(path))
        assert (status, data_page(html)) == (404, "confirmation-failed"), path
        assert headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("user_status_", list(UserStatus))
async def test_security_headers_on_every_page(make_app, make_link, http, url, user_status_):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, status=user_status_)
    _, headers, html = await fetch(http, url(link.path))
    for name, value in PAGE_HEADERS.items():
        assert headers[name] == value
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp
    assert headers["Content-Type"].startswith("text/html")
    # No external asset: every src/href is our own path, a data: URL or nothing.
    for reference in re.findall(r'(?:src|href|action)="([^"]*)"', html):
        assert reference.startswith(("/", "data:")), reference


async def test_static_assets_are_served_with_nosniff(http, url):
    for name, kind in (("confirm.css", "text/css"), ("confirm.js", "javascript")):
        status, headers, body = await fetch(http, url(f"/static/{name}"))
        assert status == 200 and kind in headers["Content-Type"] and body
        assert headers["X-Content-Type-Options"] == "nosniff"


async def test_identity_and_app_name_are_escaped(make_app, make_link, http, url):
    app = await make_app('<img src=x onerror="alert(1)">', email_confirmation_required=True)
    link = await make_link(app, properties={"name": "<script>alert(2)</script>"})
    _, _, html = await fetch(http, url(link.path))
    assert "<img src=x" not in html and "&lt;img src=x onerror=" in html
    assert "<script>alert" not in html


async def test_locale_follows_the_users_locale_then_the_browser(make_app, make_link, http, url):
    app = await make_app(email_confirmation_required=True)
    german_user = await make_link(app, properties={"blUserLocale": "de"})
    _, headers, html = await fetch(http, url(german_user.path), headers={"Accept-Language": "en-US,en"})
    assert '<html lang="de">' in html and "Bestätigen Sie Ihre E-Mail-Adresse" in html
    assert "Accept-Language" in headers["Vary"]

    plain_user = await make_link(app)
    _, _, html = await fetch(http, url(plain_user.path), headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in html
    _, _, html = await fetch(http, url(plain_user.path), headers={"Accept-Language": "pt"})
    assert '<html lang="en">' in html and "Confirm your email address" in html


async def test_app_override_is_used_at_once_and_a_broken_one_falls_back(
    make_app, make_link, sessions, http, url, caplog
):
    app = await make_app("Custom", email_confirmation_required=True)
    link = await make_link(app)
    _, _, html = await fetch(http, url(link.path))
    assert "Confirm your email address" in html

    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="page",
                name="confirmation-pending",
                locale="",
                html_body='<body data-page="{{ page }}"><h1>Welcome aboard, {{ user.name }}!</h1>'
                '<form method="post" action="{{ confirm_url }}">'
                '<input name="token" value="{{ token }}"></form>'
                '<style nonce="{{ csp_nonce }}">h1{color:red}</style></body>',
            )
        )
    status, headers, html = await fetch(http, url(link.path))  # no restart
    assert status == 200 and data_page(html) == "confirmation-pending"
    assert "Welcome aboard, Test User!" in html
    nonce = headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert f'nonce="{nonce}"' in html

    async with sessions() as session, session.begin():
        await session.execute(delete(Template).where(Template.app_id == app.app_id))
        session.add(
            Template(
                app_id=app.app_id,
                kind="page",
                name="confirmation-pending",
                locale="",
                html_body="{{ user.name.__class__.__mro__ }}",
            )
        )
        # And one that would put the token into its error message.
        session.add(
            Template(
                app_id=app.app_id, kind="page", name="confirmation-pending", locale="en", html_body="{{ {}[token].x }}"
            )
        )
    with caplog.at_level(logging.WARNING, logger="userreg.confirmation_web"):
        status, _, html = await fetch(http, url(link.path))
    assert (status, data_page(html)) == (200, "confirmation-pending")
    assert "Confirm your email address" in html
    assert any("failed to render" in record.getMessage() for record in caplog.records)
    assert all(link.token not in record.getMessage() for record in caplog.records)


async def test_override_for_the_users_locale_wins(make_app, make_link, sessions, http, url):
    app = await make_app(email_confirmation_required=True)
    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="page",
                name="confirmation-confirmed",
                locale="de",
                html_body='<body data-page="{{ page }}">Deutsch: {{ identity_value }}</body>',
            )
        )
        session.add(
            Template(
                app_id=app.app_id,
                kind="page",
                name="confirmation-confirmed",
                locale="",
                html_body='<body data-page="{{ page }}">Any: {{ identity_value }}</body>',
            )
        )
    german = await make_link(app, status=UserStatus.ENABLED, properties={"blUserLocale": "de"})
    english = await make_link(app, status=UserStatus.ENABLED)
    _, _, html = await fetch(http, url(german.path))
    assert html == f'<body data-page="confirmation-confirmed">Deutsch: {german.email}</body>'
    _, _, html = await fetch(http, url(english.path))
    assert html == f'<body data-page="confirmation-confirmed">Any: {english.email}</body>'


async def test_health_ready_and_metrics(http, url):
    status, _, body = await fetch(http, url("/health"))
    assert status == 200 and "ok" in body
    status, _, body = await fetch(http, url("/ready"))
    assert status == 200 and '"database": "ok"' in body
    status, _, body = await fetch(http, url("/metrics"))
    assert status == 200 and "userreg_confirmation_pages_total" in body


async def test_database_outage_answers_a_503_page_and_not_ready(settings, http):
    unreachable = settings.model_copy(
        update={"database_url": SecretStr(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere")}
    )
    server = TestServer(create_app(unreachable, run_outbox_relay=False), host="127.0.0.1")
    await server.start_server()  # starts although the database is away
    try:
        status, headers, html = await fetch(http, str(server.make_url(f"/{'A' * 36}/confirm/{new_token()}")))
        assert (status, data_page(html)) == (503, "error")
        assert headers["Retry-After"] and headers["Cache-Control"] == "no-store"
        assert "Traceback" not in html and "nowhere" not in html
        status, _, _ = await fetch(http, str(server.make_url("/ready")))
        assert status == 503
        status, _, _ = await fetch(http, str(server.make_url("/health")))
        assert status == 200
    finally:
        await server.close()
