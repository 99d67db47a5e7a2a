"""The expired page's "send a new link": a new token, `user.confirmation_requested`, the cool-down."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.integration.confirmation_web.support import data_page, wait_for_events
from userreg.shared.db import UserStatus
from userreg.shared.events import USER_CONFIRMATION_REQUESTED

pytestmark = pytest.mark.usefixtures("server")

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


async def resend(http, url, app_id, token):
    async with http.post(url(f"/{app_id}/confirm/resend"), data={"token": token}, headers=SAME_ORIGIN) as response:
        return response.status, response.headers, await response.text()


@pytest.mark.usefixtures("relay")
async def test_expired_link_asks_for_a_new_one_which_works(
    make_app, make_link, http, url, settings, tokens_of, event_queue, outbox_of
):
    app = await make_app("Renew Ltd", email_confirmation_required=True)
    link = await make_link(app, expired=True)
    status, _, html = await resend(http, url, app.app_id, link.token)
    assert (status, data_page(html)) == (200, "confirmation-expired")
    assert "We sent a new confirmation link" in html and link.email in html
    assert 'name="token"' not in html  # nothing more to press
    assert await tokens_of(link.user_id) == 2

    [event] = await wait_for_events(event_queue, link.user_id, USER_CONFIRMATION_REQUESTED, outbox_of)
    new_url = event["confirmation"]["url"]
    assert new_url.startswith(f"{settings.public_confirmation_url}/{app.app_id}/confirm/")
    assert event["user"]["identity"] == link.email
    new_path = new_url.removeprefix(settings.public_confirmation_url)
    async with http.get(url(new_path)) as response:
        assert (response.status, data_page(await response.text())) == (200, "confirmation-pending")
    async with http.get(url(link.path)) as response:
        assert response.status == 410  # the old link stays expired


async def test_asking_again_within_the_cool_down_says_when(make_app, make_link, http, url, tokens_of, settings):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, expired=True)
    assert (await resend(http, url, app.app_id, link.token))[0] == 200
    status, headers, html = await resend(http, url, app.app_id, link.token)
    assert (status, data_page(html)) == (429, "confirmation-expired")
    retry_after = int(headers["Retry-After"])
    assert 0 < retry_after <= settings.resend_cooldown_seconds
    assert f"try again in {retry_after} seconds" in html
    assert 'action="/' in html and "Send a new link" in html  # the button stays for later
    assert await tokens_of(link.user_id) == 2


async def test_cool_down_counts_from_the_last_link_issued(make_app, make_link, http, url, tokens_of, settings):
    app = await make_app(email_confirmation_required=True)
    expired = await make_link(app, expired=True)
    # The user was sent another link 10 s ago (by registration's resend API, say).
    await make_link(app, user_id=expired.user_id, issued_ago=timedelta(seconds=10))
    status, _, _ = await resend(http, url, app.app_id, expired.token)
    assert status == 429
    assert await tokens_of(expired.user_id) == 2

    old = await make_link(app, expired=True)
    await make_link(app, user_id=old.user_id, issued_ago=timedelta(seconds=settings.resend_cooldown_seconds + 5))
    assert (await resend(http, url, app.app_id, old.token))[0] == 200


async def test_concurrent_requests_issue_one_new_link(make_app, make_link, http, url, tokens_of):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, expired=True)
    results = await asyncio.gather(*(resend(http, url, app.app_id, link.token) for _ in range(8)))
    assert sorted(status for status, _, _ in results) == [200] + [429] * 7
    assert await tokens_of(link.user_id) == 2


async def test_confirmed_user_gets_the_confirmed_page(make_app, make_link, http, url, tokens_of):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, status=UserStatus.ENABLED, expired=True)
    status, _, html = await resend(http, url, app.app_id, link.token)
    assert (status, data_page(html)) == (200, "confirmation-confirmed")
    assert await tokens_of(link.user_id) == 1


async def test_disabled_user_gets_the_disabled_page(make_app, make_link, http, url, tokens_of):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, status=UserStatus.DISABLED, expired=True)
    status, _, html = await resend(http, url, app.app_id, link.token)
    assert (status, data_page(html)) == (403, "confirmation-disabled")
    assert await tokens_of(link.user_id) == 1


async def test_app_without_confirmation_sends_no_new_links(make_app, make_link, http, url, tokens_of):
    app = await make_app(email_confirmation_required=False)
    link = await make_link(app, expired=True)
    async with http.get(url(link.path)) as response:
        html = await response.text()
        assert (response.status, data_page(html)) == (410, "confirmation-expired")
        assert "Send a new link" not in html
    status, _, html = await resend(http, url, app.app_id, link.token)
    assert (status, data_page(html)) == (410, "confirmation-expired")
    assert "cannot be sent" in html
    assert await tokens_of(link.user_id) == 1


async def test_unknown_malformed_or_foreign_tokens_get_the_failed_page(make_app, make_link, http, url, tokens_of):
    app = await make_app(email_confirmation_required=True)
    other = await make_app(email_confirmation_required=True)
    link = await make_link(app, expired=True)
    for app_id, token in (
        (app.app_id, "nope"),
        (app.app_id, link.token[:-1] + "_"),
        (other.app_id, link.token),
    ):
        status, _, html = await resend(http, url, app_id, token)
        assert (status, data_page(html)) == (404, "confirmation-failed")
    assert await tokens_of(link.user_id) == 1


async def test_german_expired_page(make_app, make_link, http, url):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, expired=True, properties={"blUserLocale": "de"})
    async with http.get(url(link.path)) as response:
        html = await response.text()
    assert "Dieser Link ist abgelaufen" in html and "Neuen Link senden" in html
    status, _, html = await resend(http, url, app.app_id, link.token)
    assert status == 200 and "Wir haben einen neuen Bestätigungslink" in html
    status, _, html = await resend(http, url, app.app_id, link.token)
    assert status == 429 and "Sekunden erneut" in html
