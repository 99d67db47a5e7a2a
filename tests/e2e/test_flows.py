"""The system as its users meet it, with every service a real process: a client registers over
HTTP, the mailer's email arrives at the SMTP server, its link opens the confirmation page, and the
login answers accordingly."""

from __future__ import annotations

import pytest

from tests.e2e.pages import open_page, submit
from tests.support.api import PASSWORD
from tests.support.system import unique_address
from userreg.shared.db import UserStatus

pytestmark = pytest.mark.xdist_group("e2e")


async def test_register_confirm_by_link_then_log_in(system, api, http, make_app, user_status):
    app = await make_app("Northwind", email_confirmation_required=True)
    address = unique_address("alice")

    registered = await api.register(app, {"email": address, "password": PASSWORD, "name": "Alice"})
    assert registered.status == 200, registered
    user = registered.body
    assert user["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    assert "password" not in user
    not_yet = await api.login(app, address, PASSWORD)
    assert (not_yet.status, not_yet.code) == (403, 9002)

    [email] = await system.wait_for_emails(address)
    assert "Northwind" in email.subject
    assert "Alice" in email.text
    link = system.link_in(email)
    assert link.startswith(f"{system.confirmation_url}/{app.app_id}/confirm/")
    assert email.html is not None and link in email.html

    # Opening the link (a plain GET, as a mail scanner does) shows the page that confirms; it does
    # not confirm by itself.
    pending = await open_page(http, link)
    assert (pending.status, pending.name) == (200, "confirmation-pending")
    assert await user_status(user["objectId"]) is UserStatus.EMAIL_CONFIRMATION_PENDING
    assert (await api.login(app, address, PASSWORD)).code == 9002

    # The page's POST (its script sends it in a browser; here the button's form) confirms.
    confirmed = await submit(http, pending)
    assert (confirmed.status, confirmed.name) == (200, "confirmation-confirmed")
    assert await user_status(user["objectId"]) is UserStatus.ENABLED

    logged_in = await api.login(app, address.upper(), PASSWORD)
    assert logged_in.status == 200, logged_in
    assert logged_in.body["objectId"] == user["objectId"]
    assert logged_in.body["userStatus"] == "ENABLED"
    assert logged_in.body["user-token"]

    # The link again: the confirmed page, never an error; and no second email for anything above.
    again = await open_page(http, link)
    assert (again.status, again.name) == (200, "confirmation-confirmed")
    assert len(system.emails_to(address)) == 1


async def test_without_confirmation_the_welcome_email_arrives_and_login_works_at_once(system, api, make_app):
    app = await make_app("Contoso", welcome_email_enabled=True)
    address = unique_address("bob")

    registered = await api.register(app, {"email": address, "password": PASSWORD, "name": "Bob"})
    assert registered.status == 200, registered
    assert registered.body["userStatus"] == "ENABLED"
    logged_in = await api.login(app, address, PASSWORD)
    assert logged_in.status == 200, logged_in

    [email] = await system.wait_for_emails(address)
    assert "Contoso" in email.subject
    assert "Bob" in email.text
    assert "/confirm/" not in email.text  # a welcome, not a link to confirm


async def test_apps_side_by_side_keep_their_own_settings(system, api, admin, make_app):
    """One address, four apps, four different answers: each app's settings apply to it alone,
    and an operator's change with the admin command applies to the running services at once."""
    by_username = await make_app("By Username")
    closed_schema = await make_app("Closed Schema", dynamic_schema=False)
    closed = await make_app("Closed")
    confirming = await make_app("Confirming", email_confirmation_required=True)
    await admin("schema", "add", by_username.app_id, "username", "--type", "STRING")
    await admin("schema", "set-identity", by_username.app_id, "username")
    shown = await admin("app", "set", closed.app_id, "registrationEnabled=false")
    assert shown["registrationEnabled"] is False
    address = unique_address("carol")

    # identityProperty=username: the username identifies, the email is just a property.
    first = await api.register(
        by_username, {"username": "Carol", "email": address, "password": PASSWORD, "shoeSize": 38}
    )
    assert first.status == 200, first
    assert first.body["shoeSize"] == 38  # dynamic schema: a new column
    taken = await api.register(by_username, {"username": "CAROL", "password": PASSWORD})
    assert (taken.status, taken.code) == (409, 3033)
    assert (await api.login(by_username, "carol", PASSWORD)).status == 200

    # dynamicSchema off: an unknown property is refused, known ones register.
    unknown = await api.register(closed_schema, {"email": address, "password": PASSWORD, "shoeSize": 38})
    assert (unknown.status, unknown.code) == (400, 3010)
    assert (await api.register(closed_schema, {"email": address, "password": PASSWORD})).status == 200

    # Registration switched off by the operator.
    refused = await api.register(closed, {"email": address, "password": PASSWORD})
    assert (refused.status, refused.code) == (403, 3009)
    assert refused.is_envelope()

    # Confirmation required: the same address is a new, pending user of this app.
    pending = await api.register(confirming, {"email": address, "password": PASSWORD})
    assert pending.body["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    assert (await api.login(confirming, address, PASSWORD)).code == 9002
    assert (await api.login(closed_schema, address, PASSWORD)).status == 200

    # Only the app that confirms sends an email (no app here has the welcome email on). The events
    # go through the mailer queue in order: once a later registration's email is in, the events
    # before it have been handed to the mailer too.
    [email] = await system.wait_for_emails(address)
    assert "Confirming" in email.subject
    assert f"/{confirming.app_id}/confirm/" in system.link_in(email)
    later = unique_address("later")
    assert (await api.register(confirming, {"email": later, "password": PASSWORD})).status == 200
    await system.wait_for_emails(later)
    assert len(system.emails_to(address)) == 1


async def test_resend_sends_a_second_link_that_confirms(system, api, http, make_app, age_links, user_status):
    app = await make_app("Fabrikam", email_confirmation_required=True)
    address = unique_address("dave")
    user = (await api.register(app, {"email": address, "password": PASSWORD})).body
    [first] = await system.wait_for_emails(address)

    # The registration's link counts: asking again at once is refused, and says when to try.
    too_soon = await api.resend_confirmation(app, address)
    assert (too_soon.status, too_soon.code) == (429, 9001)

    await age_links(user["objectId"], 61)  # the cool-down (60 s) has passed
    resent = await api.resend_confirmation(app, address.upper())
    assert (resent.status, resent.body) == (200, "")
    _, second = await system.wait_for_emails(address, 2)
    assert system.link_in(second) != system.link_in(first)
    assert (await api.resend_confirmation(app, address)).code == 9001

    # The first link still works (not yet expired); the second one confirms.
    still_valid = await open_page(http, system.link_in(first))
    assert still_valid.name == "confirmation-pending"
    confirmed = await submit(http, await open_page(http, system.link_in(second)))
    assert confirmed.name == "confirmation-confirmed"
    assert await user_status(user["objectId"]) is UserStatus.ENABLED
    assert (await api.login(app, address, PASSWORD)).status == 200

    # Now there is nothing to resend; nor for a stranger, nor in an app that does not confirm.
    assert (await api.resend_confirmation(app, address)).code == 3102
    assert (await api.resend_confirmation(app, unique_address("nobody"))).code == 3104
    other = await make_app("No Confirmation")
    assert (await api.resend_confirmation(other, address)).code == 3103
    assert len(system.emails_to(address)) == 2


async def test_a_disabled_user_gets_the_disabled_page_and_3090(system, api, http, make_app, user_status):
    app = await make_app("Tailspin", email_confirmation_required=True)
    address = unique_address("erin")
    user = (await api.register(app, {"email": address, "password": PASSWORD})).body
    [email] = await system.wait_for_emails(address)

    disabled = await api.set_status(app, user["objectId"], "DISABLED")
    assert (disabled.status, disabled.body) == (200, "")
    assert await user_status(user["objectId"]) is UserStatus.DISABLED

    page = await open_page(http, system.link_in(email))
    assert (page.status, page.name) == (403, "confirmation-disabled")
    refused = await api.login(app, address, PASSWORD)
    assert (refused.status, refused.code) == (403, 3090)
    assert refused.is_envelope()

    # Enabled again by the server: the login works; the link shows the confirmed page.
    assert (await api.set_status(app, user["objectId"], "ENABLED")).status == 200
    assert (await api.login(app, address, PASSWORD)).status == 200
    assert (await open_page(http, system.link_in(email))).name == "confirmation-confirmed"
