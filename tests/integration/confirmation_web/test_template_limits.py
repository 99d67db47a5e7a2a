"""A page override that breaks a render limit or fails to render: the shipped page is served instead,
with the same status, and the service goes on answering (the README's Security section)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.integration.confirmation_web.support import data_page
from userreg.confirmation_web.app import create_app
from userreg.shared.db import Template, UserStatus
from userreg.shared.tokens import new_token

RENDER_SECONDS = 0.4

SIZE_BOMB = "{{ 'a' * 10**10 }}"
OUTPUT_BOMB = "{% for i in range(100000) %}<p>{{ app_name * 100 }} {{ i }}</p>{% endfor %}"
TIME_BOMB = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.fixture
async def server(settings) -> AsyncIterator[TestServer]:
    """confirmation-web with a short render budget (the `url` fixture opens pages on it)."""
    limited = settings.model_copy(update={"template_render_seconds": RENDER_SECONDS})
    test_server = TestServer(create_app(limited, run_outbox_relay=False), host="127.0.0.1")
    await test_server.start_server()
    yield test_server
    await test_server.close()


async def fetch(http, url):
    started = time.monotonic()
    async with http.get(url, allow_redirects=False) as response:
        return response.status, await response.text(), time.monotonic() - started


async def override(sessions, app, page: str, html: str) -> None:
    async with sessions() as session, session.begin():
        session.add(Template(app_id=app.app_id, kind="page", name=page, locale="", html_body=html))


def warnings_about(caplog, app) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and app.app_id in record.getMessage()
    ]


@pytest.mark.parametrize(
    "bomb, limit",
    [
        (SIZE_BOMB, "TEMPLATE_OUTPUT_BYTES"),
        (OUTPUT_BOMB, "TEMPLATE_OUTPUT_BYTES"),
        (TIME_BOMB, f"TEMPLATE_RENDER_SECONDS ({RENDER_SECONDS:g} s)"),
    ],
)
async def test_a_bomb_override_gets_the_shipped_page_with_its_status(
    make_app, make_link, sessions, http, url, caplog, bomb, limit
):
    app = await make_app("Bombed", email_confirmation_required=True)
    for page in ("confirmation-pending", "confirmation-expired", "confirmation-failed"):
        await override(sessions, app, page, bomb)
    pending = await make_link(app)
    expired = await make_link(app, expired=True)
    cases = [
        (pending.path, 200, "confirmation-pending"),
        (expired.path, 410, "confirmation-expired"),
        (f"/{app.app_id}/confirm/{new_token()}", 404, "confirmation-failed"),
    ]
    with caplog.at_level(logging.WARNING, logger="userreg.confirmation_web"):
        for path, status, page in cases:
            answered, html, took = await fetch(http, url(path))
            assert (answered, data_page(html)) == (status, page)
            assert "Bombed" in html and "BombedBombed" not in html  # the shipped page, for this app
            assert took < RENDER_SECONDS + 2
    logged = warnings_about(caplog, app)
    for _, _, page in cases:
        [message] = [message for message in logged if f"page template {page} " in message]
        assert "failed to render" in message and "serving the shipped page" in message
        # The limit it broke: a size bomb on a starved CPU may reach the time limit first
        # (tests/unit/shared/test_template_limits.py tells the two apart exactly).
        assert limit in message or "TEMPLATE_RENDER_SECONDS" in message
    assert all(pending.token not in message and pending.email not in message for message in logged)

    # The override that broke a limit is not tried again for a while: no request waits for it.
    caplog.clear()
    for path, status, page in cases:
        answered, html, took = await fetch(http, url(path))
        assert (answered, data_page(html)) == (status, page)
        assert took < RENDER_SECONDS
    assert warnings_about(caplog, app) == []
    answered, _, _ = await fetch(http, url("/health"))
    assert answered == 200


async def test_a_fixed_override_is_used_at_once(make_app, make_link, sessions, http, url):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app, status=UserStatus.ENABLED)
    await override(sessions, app, "confirmation-confirmed", TIME_BOMB)
    _, html, _ = await fetch(http, url(link.path))
    assert data_page(html) == "confirmation-confirmed" and "already confirmed" in html
    async with sessions() as session, session.begin():
        row = await session.get(Template, (app.app_id, "page", "confirmation-confirmed", ""))
        row.html_body = '<body data-page="{{ page }}">Fixed</body>'
    _, html, _ = await fetch(http, url(link.path))
    assert html == '<body data-page="confirmation-confirmed">Fixed</body>'


async def test_an_override_failing_otherwise_is_logged_without_the_users_data(
    make_app, make_link, sessions, http, url, caplog
):
    app = await make_app(email_confirmation_required=True)
    link = await make_link(app)
    await override(sessions, app, "confirmation-pending", "line one\n{{ {}[user.email ~ token].x }}")
    with caplog.at_level(logging.WARNING, logger="userreg.confirmation_web"):
        status, html, _ = await fetch(http, url(link.path))
    assert (status, data_page(html)) == (200, "confirmation-pending")
    [message] = warnings_about(caplog, app)
    assert "page template confirmation-pending (en) failed to render (UndefinedError at line 2)" in message
    assert link.email not in message and link.token not in message
