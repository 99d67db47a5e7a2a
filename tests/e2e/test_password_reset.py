"""Password recovery as a user meets it (docs/api.md, Sessions and password recovery), every service
a real process: the API's restorepassword → the email in the inbox → its link in Chromium → the form
→ the done page; then the new password logs in, the old one answers 3003, the session from before is
over and the "password changed" notice arrives. Expired and used links, a mail scanner's GET, and
the decisions for pending and disabled users. Screenshots go to test-artifacts/screenshots/
(e2e-password-*)."""

from __future__ import annotations

import pytest

from tests.e2e.pages import open_page
from tests.e2e.test_browser import PAGE_TIMEOUT_MS, Tab, new_tab, shoot_email
from tests.support.api import NEW_PASSWORD, PASSWORD
from tests.support.system import Email, unique_address
from userreg.shared.db import UserStatus

pytestmark = pytest.mark.xdist_group("e2e")


async def reset_in_browser(tab: Tab, link: str, password: str, shot: str) -> None:
    """Open the emailed link, type the new password twice, submit: the done page."""
    response = await tab.page.goto(link)
    assert response is not None and response.status == 200
    assert await tab.page_name() == "password-reset"
    await tab.shot(shot)
    fields = tab.page.locator('form input[type="password"]')
    assert await fields.count() == 2  # the new password, and again
    for index in range(2):
        await fields.nth(index).fill(password)
    await fields.nth(1).press("Enter")
    await tab.wait_for_page("password-reset-done")
    await tab.shot(f"{shot}-done")


async def register_and_ask_for_a_reset(system, api, app, label: str) -> tuple[str, dict, Email]:
    """A user of the app (no confirmation) who asked for a reset: (address, user, the reset email)."""
    address = unique_address(label)
    user = (await api.register(app, {"email": address, "password": PASSWORD, "name": label.title()})).body
    asked = await api.restore_password(app, address)
    assert (asked.status, asked.body) == (200, ""), asked
    [email] = await system.wait_for_emails(address)
    link = system.reset_link_in(email)
    assert link.startswith(f"{system.confirmation_url}/{app.app_id}/reset-password/")
    assert email.html is not None and link in email.html
    return address, user, email


@pytest.mark.browser
async def test_a_reset_in_the_browser_sets_the_new_password_ends_the_old_session_and_sends_a_notice(
    system, api, browser, make_app
):
    app = await make_app("Litware")
    address, _, email = await register_and_ask_for_a_reset(system, api, app, "heidi")
    await shoot_email(browser, email, "email-password-reset")
    link = system.reset_link_in(email)
    old_session = (await api.login(app, address, PASSWORD)).body["user-token"]
    assert (await api.is_valid_user_token(app, old_session)).body is True

    tab = await new_tab(browser)
    await reset_in_browser(tab, link, NEW_PASSWORD, "password-reset")
    # The link's GET showed the form; its POST (the form's own) changed the password.
    assert [(method, status) for method, status, _ in tab.documents] == [("GET", 200), ("POST", 200)]
    assert tab.problems == []

    logged_in = await api.login(app, address, NEW_PASSWORD)
    assert logged_in.status == 200, logged_in
    old = await api.login(app, address, PASSWORD)
    assert (old.status, old.code) == (401, 3003)
    assert (await api.is_valid_user_token(app, old_session)).body is False
    assert (await api.is_valid_user_token(app, logged_in.body["user-token"])).body is True

    _, notice = await system.wait_for_emails(address, 2)
    assert "/reset-password/" not in notice.text  # a notice, not another link
    await shoot_email(browser, notice, "email-password-changed")

    # The link is used up: the failed page, and nothing changes.
    response = await tab.page.goto(link)
    assert response is not None and response.status == 404
    assert await tab.page_name() == "password-reset-failed"
    await tab.shot("password-reset-used")
    assert (await api.login(app, address, NEW_PASSWORD)).status == 200
    await tab.page.context.close()


@pytest.mark.browser
async def test_an_expired_reset_link_shows_the_expired_page_whose_new_link_works(
    system, api, browser, make_app, age_reset_links
):
    app = await make_app("Proseware", password_reset_link_ttl=3600)
    address, user, email = await register_and_ask_for_a_reset(system, api, app, "ivan")
    first = system.reset_link_in(email)
    # Two hours later: the link has expired (and the cool-down has long passed).
    await age_reset_links(user["objectId"], 7200)

    tab = await new_tab(browser)
    response = await tab.page.goto(first)
    assert response is not None and response.status == 410
    assert await tab.page_name() == "password-reset-expired"
    await tab.shot("password-reset-expired")
    assert (await api.login(app, address, PASSWORD)).status == 200  # the expired link changed nothing

    await tab.page.locator('form button, form input[type="submit"]').first.click(timeout=PAGE_TIMEOUT_MS)
    _, second = await system.wait_for_emails(address, 2)
    await tab.shot("password-reset-expired-new-link-sent")
    assert system.reset_link_in(second) != first

    await reset_in_browser(tab, system.reset_link_in(second), NEW_PASSWORD, "password-reset-with-new-link")
    assert tab.problems == []
    assert (await api.login(app, address, NEW_PASSWORD)).status == 200
    await tab.page.context.close()


async def test_a_mail_scanners_get_of_the_reset_link_changes_nothing(system, api, http, make_app):
    app = await make_app("Scanned")
    address, _, email = await register_and_ask_for_a_reset(system, api, app, "judy")
    link = system.reset_link_in(email)
    session = (await api.login(app, address, PASSWORD)).body["user-token"]

    # A scanner fetches the link (no script, maybe twice): the form, and nothing else happens.
    for _ in range(2):
        page = await open_page(http, link)
        assert (page.status, page.name) == (200, "password-reset")

    assert (await api.login(app, address, PASSWORD)).status == 200
    assert (await api.is_valid_user_token(app, session)).body is True
    assert (await open_page(http, link)).name == "password-reset"  # not used up either


@pytest.mark.browser
async def test_a_pending_user_who_resets_the_password_is_confirmed(
    system, api, browser, make_app, age_links, user_status
):
    app = await make_app("Pending Reset", email_confirmation_required=True)
    address = unique_address("kate")
    user = (await api.register(app, {"email": address, "password": PASSWORD})).body
    await system.wait_for_emails(address)  # the confirmation link, not used
    await age_links(user["objectId"], 61)  # the mailbox cool-down has passed
    assert (await api.login(app, address, PASSWORD)).code == 9002

    assert (await api.restore_password(app, address)).status == 200
    _, email = await system.wait_for_emails(address, 2)
    tab = await new_tab(browser)
    await reset_in_browser(tab, system.reset_link_in(email), NEW_PASSWORD, "password-reset-pending")
    await tab.page.context.close()

    # Using the emailed link proved the address.
    assert await user_status(user["objectId"]) is UserStatus.ENABLED
    assert (await api.login(app, address, NEW_PASSWORD)).status == 200


async def test_a_disabled_user_gets_the_link_but_its_page_fails_and_changes_nothing(system, api, http, make_app):
    app = await make_app("Disabled Reset")
    address = unique_address("leo")
    user = (await api.register(app, {"email": address, "password": PASSWORD})).body
    assert (await api.set_status(app, user["objectId"], "DISABLED")).status == 200

    assert (await api.restore_password(app, address)).status == 200  # no oracle beyond 3020
    [email] = await system.wait_for_emails(address)
    page = await open_page(http, system.reset_link_in(email))
    assert (page.status, page.name) == (404, "password-reset-failed")
    assert (await api.login(app, address, PASSWORD)).code == 3090  # disabling stays in force
