"""Confirming: the pending page's POST, exactly once under concurrency, with one `user.confirmed`."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from tests.integration.confirmation_web.support import data_page, drain_events, wait_for_events
from userreg.confirmation_web.app import create_app
from userreg.shared.db import User, UserStatus
from userreg.shared.events import USER_CONFIRMED

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin", "Origin": "null"}  # what Chromium sends from our page


async def post(http, url, data, headers=SAME_ORIGIN):
    async with http.post(url, data=data, headers=headers, allow_redirects=False) as response:
        return response.status, response.headers, await response.text()


@pytest.mark.usefixtures("server", "relay")
async def test_post_confirms_and_publishes_one_user_confirmed(
    make_app, make_link, http, url, user_status, event_queue, outbox_of, sessions
):
    app = await make_app("Confirm Corp", email_confirmation_required=True)
    link = await make_link(app, properties={"blUserLocale": "en"})
    status, headers, html = await post(http, url(f"/{app.app_id}/confirm"), {"token": link.token})
    assert (status, data_page(html)) == (200, "confirmation-confirmed")
    assert "Your email address is confirmed" in html and link.email in html
    assert link.token not in html
    assert headers["Cache-Control"] == "no-store"
    assert await user_status(link.user_id) is UserStatus.ENABLED
    async with sessions() as session:
        assert await session.scalar(select(User.updated_at).where(User.object_id == link.user_id)) is not None

    [event] = await wait_for_events(event_queue, link.user_id, USER_CONFIRMED, outbox_of)
    assert event["appId"] == app.app_id
    assert event["user"]["identity"] == link.email and event["user"]["email"] == link.email
    assert event["confirmation"] is None
    assert "password" not in event["user"]["properties"]
    assert link.token not in str(event)

    # Opening the link or posting again afterwards: the confirmed page, no second event.
    status, _, html = await post(http, url(f"/{app.app_id}/confirm"), {"token": link.token})
    assert (status, data_page(html)) == (200, "confirmation-confirmed")
    assert "already confirmed" in html
    async with http.get(url(link.path)) as response:
        assert response.status == 200 and data_page(await response.text()) == "confirmation-confirmed"
    assert await outbox_of(link.user_id) == []
    assert await drain_events(event_queue, link.user_id) == []


async def test_twenty_concurrent_confirmations_change_the_status_once(
    settings, make_app, make_link, user_status, event_queue, outbox_of
):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    # Several links of the same user, posted at once from separate connections.
    other_links = [await make_link(app, user_id=link.user_id) for _ in range(3)]
    tokens = [link.token, *(other.token for other in other_links)]
    test_server = TestServer(create_app(settings), host="127.0.0.1")
    await test_server.start_server()
    try:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            results = await asyncio.gather(
                *(
                    post(
                        http,
                        str(test_server.make_url(f"/{app.app_id}/confirm")),
                        {"token": tokens[i % len(tokens)]},
                    )
                    for i in range(20)
                )
            )
        assert {(status, data_page(html)) for status, _, html in results} == {(200, "confirmation-confirmed")}
        just_confirmed = [html for _, _, html in results if "Your email address is confirmed" in html]
        assert len(just_confirmed) == 1, "exactly one request confirmed; the others found it done"
        assert await user_status(link.user_id) is UserStatus.ENABLED
        events = await wait_for_events(event_queue, link.user_id, USER_CONFIRMED, outbox_of)
        assert len(events) == 1
    finally:
        await test_server.close()


async def test_concurrent_confirmations_write_one_outbox_row(settings, sessions, make_app, make_link, outbox_of):
    """The same race without a relay: the outbox itself holds exactly one `user.confirmed`."""
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    test_server = TestServer(create_app(settings, run_outbox_relay=False), host="127.0.0.1")
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True)) as http:
            await asyncio.gather(
                *(
                    post(http, str(test_server.make_url(f"/{app.app_id}/confirm")), {"token": link.token})
                    for _ in range(20)
                )
            )
        assert await outbox_of(link.user_id) == [USER_CONFIRMED]
    finally:
        await test_server.close()


@pytest.mark.usefixtures("server")
async def test_post_of_an_expired_disabled_or_unknown_link_does_not_confirm(
    make_app, make_link, http, url, user_status, outbox_of
):
    app = await make_app(email_confirmation_required=True)
    expired = await make_link(app, expired=True)
    disabled = await make_link(app, status=UserStatus.DISABLED)
    endpoint = url(f"/{app.app_id}/confirm")
    assert (await post(http, endpoint, {"token": expired.token}))[0] == 410
    assert (await post(http, endpoint, {"token": disabled.token}))[0] == 403
    assert (await post(http, endpoint, {"token": expired.token[:-1]}))[0] == 404
    assert (await post(http, endpoint, {}))[0] == 404
    assert (await post(http, endpoint, {"token": ["a", "b"]}))[0] == 404
    assert await user_status(expired.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING
    assert await user_status(disabled.user_id) is UserStatus.DISABLED
    assert await outbox_of(expired.user_id) == [] and await outbox_of(disabled.user_id) == []


@pytest.mark.usefixtures("server")
@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Origin": "null"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
    ],
)
async def test_cross_site_posts_are_refused(make_app, make_link, http, url, user_status, headers):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    status, _, html = await post(http, url(f"/{app.app_id}/confirm"), {"token": link.token}, headers=headers)
    assert (status, data_page(html)) == (403, "confirmation-failed")
    assert "did not come from the confirmation page" in html
    status, _, _ = await post(http, url(f"/{app.app_id}/confirm/resend"), {"token": link.token}, headers=headers)
    assert status == 403
    assert await user_status(link.user_id) is UserStatus.EMAIL_CONFIRMATION_PENDING


@pytest.mark.usefixtures("server")
async def test_a_post_from_the_public_origin_is_accepted(make_app, make_link, http, url, settings, user_status):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    status, _, _ = await post(
        http, url(f"/{app.app_id}/confirm"), {"token": link.token}, headers={"Origin": settings.public_confirmation_url}
    )
    assert status == 200
    assert await user_status(link.user_id) is UserStatus.ENABLED


@pytest.mark.usefixtures("server")
async def test_oversized_post_is_refused(make_app, http, url):
    app = await make_app()
    status, _, _ = await post(http, url(f"/{app.app_id}/confirm"), {"token": "x" * 100_000})
    assert status == 413
