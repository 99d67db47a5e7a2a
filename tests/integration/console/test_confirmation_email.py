"""Issue 12's check "turn Email confirmation on and see a new user get the confirmation email", end
to end on real sockets: in Chromium an operator ticks "Email confirmation" on the app's User
Registration page; a client then registers through the registration API; registration's outbox
relay publishes the event to RabbitMQ, the real mailer consumes it and sends through SMTP to an
inbox on a socket; the email's link, opened in the browser, confirms the user on confirmation-web.
Everything runs on a topology of the test's own."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from tests.integration.console.browser import new_page, shot, sign_in
from tests.integration.mailer.helpers import remove_topology, running_mailer, settings_for
from tests.support.polling import free_port
from userreg.confirmation_web.app import create_app as create_confirmation_app
from userreg.inbox import Inbox
from userreg.registration.app import create_app as create_registration_app
from userreg.shared.db.models import App, User, UserStatus
from userreg.shared.settings import Settings

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class MailingSystem:
    settings: Settings
    inbox: Inbox
    registration_url: str
    confirmation_url: str
    console_url: str


async def _started(server: TestServer) -> str:
    await server.start_server()
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def mailing_system(settings, start_console) -> AsyncIterator[MailingSystem]:
    """The mailer (consuming from RabbitMQ, sending to an inbox on a socket), registration,
    confirmation-web and a console, all on the settings of one topology of the test's own."""
    confirmation_port = free_port()
    async with Inbox(smtp_port=0, http_port=None) as inbox:
        own = settings_for(
            settings, smtp_port=inbox.smtp_port, public_confirmation_url=f"http://127.0.0.1:{confirmation_port}"
        )
        servers: list[TestServer] = []
        try:
            async with running_mailer(own):
                confirmation = TestServer(create_confirmation_app(own), host="127.0.0.1", port=confirmation_port)
                registration = TestServer(create_registration_app(own), host="127.0.0.1")
                servers += [confirmation, registration]
                confirmation_url, registration_url = await _started(confirmation), await _started(registration)
                console_url = await start_console(
                    {
                        "events_exchange": own.events_exchange,
                        "public_confirmation_url": own.public_confirmation_url,
                        "smtp_port": own.smtp_port,
                    }
                )
                yield MailingSystem(own, inbox, registration_url, confirmation_url, console_url)
        finally:
            for server in reversed(servers):
                await server.close()
            await remove_topology(own)


async def test_turning_email_confirmation_on_sends_a_new_user_the_confirmation_email(
    browser, mailing_system, operator, make_app, sessions
):
    system = mailing_system
    app = await make_app(f"Litware {uuid.uuid4().hex[:6]}")
    assert not app.email_confirmation_required
    watched = await new_page(browser)
    page = watched.page
    await sign_in(watched, system.console_url, operator.email, operator.password)
    await page.goto(f"{system.console_url}/apps/{app.app_id}/registration")
    await page.get_by_label("Email confirmation", exact=True).check()
    await page.get_by_role("button", name="Save settings").click()
    await page.wait_for_selector(".notice")
    assert "Saved." in await page.inner_text(".notice")
    assert await page.get_by_label("Email confirmation", exact=True).is_checked()

    address = f"new-user-{uuid.uuid4().hex[:10]}@example.com"
    register_url = f"{system.registration_url}/{app.app_id}/{app.rest_api_key}/users/register"
    async with (
        aiohttp.ClientSession() as http,
        http.post(register_url, json={"email": address, "password": "secret password 1", "name": "Nora"}) as answer,
    ):
        registered = await answer.json()
    assert registered["userStatus"] == "EMAIL_CONFIRMATION_PENDING", registered

    [email] = await system.inbox.wait_for(lambda message: address in message.recipients, timeout=30)
    assert app.name in email.subject
    links = set(
        re.findall(re.escape(system.confirmation_url) + r"/[0-9A-F-]+/confirm/[A-Za-z0-9_-]+", email.text or "")
    )
    assert len(links) == 1, email.text
    [link] = links
    assert link.startswith(f"{system.confirmation_url}/{app.app_id}/confirm/")

    # The link works: opened in the browser, its page confirms the user.
    await page.goto(link)
    await page.wait_for_selector('body[data-page="confirmation-confirmed"]')
    await shot(page, "confirmation-email-link-confirmed-desktop-light")
    async with sessions() as session:
        user = await session.get(User, registered["objectId"])
        assert user.status is UserStatus.ENABLED
        assert (await session.get(App, app.app_id)).email_confirmation_required
    assert watched.problems == []
