"""The console's Users, Schema, Email templates & pages and Deliveries pages in a real headless
Chromium: what an operator does on them works (with script and without), each page is looked at on
a laptop and a phone, light and dark (screenshots in test-artifacts/screenshots/console/), and
axe-core finds no serious or critical accessibility violation on any of them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import aio_pika
import pytest
from sqlalchemy import select

from tests.integration.console.browser import assert_accessible, look_at, new_page, shot, sign_in
from tests.integration.console.test_deliveries import event_of, park, queued_ids
from userreg.console.rules.deliveries import PAGE_SIZE
from userreg.inbox import Inbox
from userreg.shared.apps import schema_of
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.db.models import Template, User, UserStatus
from userreg.shared.messaging import Topology, declare_topology, delete_topology

pytestmark = pytest.mark.browser

PASSWORD = "a long enough password"
# What a confirmation page's preview reports, and rightly: its script is not run in the sandboxed
# frame, and its style sheet lives at the tests' confirmation-web address, which resolves nowhere.
PREVIEW_NOISE = ("Blocked script execution in 'about:srcdoc'", "confirm.test.invalid", "ERR_NAME_NOT_RESOLVED")


def unexpected(problems: list[str]) -> list[str]:
    return [problem for problem in problems if not any(noise in problem for noise in PREVIEW_NOISE)]


async def test_creating_a_user_and_disabling_it(browser, console_url, operator, make_app, sessions):
    app = await make_app(f"Users {uuid.uuid4().hex[:6]}", email_confirmation_required=True)
    watched = await new_page(browser)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.goto(f"{console_url}/apps/{app.app_id}/users")
    await page.get_by_role("link", name="Create a user").click()
    await page.wait_for_selector('body[data-page="user-new"]')
    await page.get_by_label("email (identity)").fill("ann@example.com")
    await page.get_by_label("name", exact=True).fill("<script>alert('x')</script> Ann")
    await page.get_by_label("password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create user").click()
    await page.wait_for_selector('body[data-page="user"]')
    assert "a confirmation email is on its way" in await page.inner_text("main")
    assert "<script>alert('x')</script> Ann" in await page.inner_text("main"), "shown as text, not run"
    await page.get_by_role("button", name="Disable").click()
    await page.wait_for_selector("text=The user is disabled")
    async with sessions() as session:
        user = await session.scalar(select(User).where(User.app_id == app.app_id))
    assert user.status is UserStatus.DISABLED
    await page.goto(f"{console_url}/apps/{app.app_id}/users?q=ANN")
    await page.wait_for_selector('body[data-page="users"]')
    assert await page.get_by_role("link", name="ann@example.com").count() == 1
    await page.get_by_role("link", name="ann@example.com").click()
    await page.get_by_role("link", name="Delete…").click()
    await page.wait_for_selector('body[data-page="user-delete"]')
    await shot(page, "user-delete-desktop-light")
    await assert_accessible(page)
    await page.get_by_role("button", name="Delete the user").click()
    await page.wait_for_selector("text=The user was deleted.")
    assert watched.problems == []
    await page.context.close()


async def test_the_users_pages_are_looked_at(browser, console_url, operator, make_app, sessions):
    app = await make_app(f"Looked at {uuid.uuid4().hex[:6]}", email_confirmation_required=True)
    watched = await new_page(browser)
    await sign_in(watched, console_url, operator.email, operator.password)
    page = watched.page
    await page.goto(f"{console_url}/apps/{app.app_id}/users/new")
    await page.get_by_label("email (identity)").fill("bob@example.com")
    await page.get_by_label("password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Create user").click()
    await page.wait_for_selector('body[data-page="user"]')
    object_id = page.url.split("/users/")[1].split("?")[0]
    await page.context.close()
    problems = []
    for path, name, data_page in (
        (f"/apps/{app.app_id}/users", "users", "users"),
        (f"/apps/{app.app_id}/users/new", "user-new", "user-new"),
        (f"/apps/{app.app_id}/users/{object_id}", "user", "user"),
    ):
        problems += await look_at(
            browser, console_url, operator.email, operator.password, path, name, data_page=data_page
        )
    assert problems == []


async def test_adding_and_changing_a_column(browser, console_url, operator, make_app, sessions):
    app = await make_app(f"Schema {uuid.uuid4().hex[:6]}")
    watched = await new_page(browser, javascript=False)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.goto(f"{console_url}/apps/{app.app_id}/schema")
    await page.get_by_label("Name", exact=True).fill("nickname")
    await page.get_by_label("Type", exact=True).select_option("STRING")
    await page.get_by_label("Max length", exact=True).fill("40")
    await page.get_by_role("button", name="Add column").click()
    await page.wait_for_selector("text=The column was added.")
    await page.get_by_role("link", name="Change the column nickname").click()
    await page.wait_for_selector('body[data-page="schema-column"]')
    await page.get_by_role("checkbox", name="Required").check()
    await page.get_by_role("button", name="Save column").click()
    await page.wait_for_selector("text=The column was changed.")
    async with sessions() as session:
        column = (await schema_of(session, app.app_id))["nickname"]
    assert (column.required, column.max_length) == (True, 40)
    assert watched.problems == []
    await page.context.close()

    # A refusal, shown next to its field (axe runs with script on: it is a script itself).
    watched = await new_page(browser)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.goto(f"{console_url}/apps/{app.app_id}/schema")
    await page.get_by_label("Name", exact=True).fill("9lives")
    await page.get_by_role("button", name="Add column").click()
    await page.wait_for_selector("#add-error-name")
    await shot(page, "schema-refused-desktop-light")
    await assert_accessible(page)
    assert watched.problems == []
    await page.context.close()
    problems = await look_at(
        browser,
        console_url,
        operator.email,
        operator.password,
        f"/apps/{app.app_id}/schema",
        "schema",
        data_page="schema",
    )
    problems += await look_at(
        browser,
        console_url,
        operator.email,
        operator.password,
        f"/apps/{app.app_id}/schema/nickname",
        "schema-column",
        data_page="schema-column",
    )
    assert problems == []


async def test_editing_the_confirmation_template_and_sending_a_test_email(
    browser, operator, make_app, sessions, start_console
):
    app = await make_app(f"Templates {uuid.uuid4().hex[:6]}")
    async with Inbox(smtp_port=0, http_port=None) as inbox:
        base_url = await start_console({"smtp_port": inbox.smtp_port})
        watched = await new_page(browser)
        page = watched.page
        await sign_in(watched, base_url, operator.email, operator.password)
        await page.goto(f"{base_url}/apps/{app.app_id}/templates")
        await page.get_by_role("link", name="Edit confirmation (All languages)").click()
        await page.wait_for_selector('body[data-page="template-editor"]')
        frame = page.frame_locator("#preview-frame")
        await frame.get_by_text("Confirm your email address", exact=True).wait_for()
        # The live preview follows the editor as one types.
        await page.get_by_label("HTML", exact=True).fill("<h1>Welcome aboard, {{ user.name }}!</h1><p>{{ '<b>' }}</p>")
        await frame.get_by_text("Welcome aboard, Ann Example!").wait_for()
        assert await frame.locator("b").count() == 0, "what a template prints is escaped"
        await page.get_by_label("Subject", exact=True).fill("Confirm {{ app_name }} now")
        await page.locator("#preview-subject", has_text=f"Confirm {app.name} now").wait_for()
        await page.get_by_label("HTML", exact=True).fill("{% if %}")
        await page.wait_for_selector("#preview-error:not([hidden])")
        assert "does not compile" in await page.inner_text("#preview-error")
        await page.get_by_label("HTML", exact=True).fill("<h1>Welcome aboard, {{ user.name }}!</h1>")
        await frame.get_by_text("Welcome aboard, Ann Example!").wait_for()
        await shot(page, "template-editor-live-desktop-light")
        await page.get_by_label("Address", exact=True).fill("ops@example.com")
        await page.get_by_role("button", name="Send a test email").click()
        await page.wait_for_selector("text=A test email was sent to ops@example.com.")
        [message] = await inbox.wait_for(lambda message: "ops@example.com" in message.recipients)
        assert message.subject == f"Confirm {app.name} now" and "Welcome aboard, Ann Example!" in message.html
        await page.get_by_role("button", name="Save").click()
        await page.wait_for_selector("text=The template was saved")
        await frame.get_by_text("Welcome aboard, Ann Example!").wait_for()
        async with sessions() as session:
            [row] = await session.scalars(select(Template).where(Template.app_id == app.app_id))
        assert row.html_body == "<h1>Welcome aboard, {{ user.name }}!</h1>"
        assert watched.problems == []
        await page.context.close()

        problems = []
        for path, name in (
            (f"/apps/{app.app_id}/templates", "templates"),
            (f"/apps/{app.app_id}/templates/email/confirmation?locale=", "template-editor-email"),
            (f"/apps/{app.app_id}/templates/page/confirmation-expired?locale=de", "template-editor-page"),
        ):
            problems += await look_at(
                browser,
                base_url,
                operator.email,
                operator.password,
                path,
                name,
                data_page="templates" if name == "templates" else "template-editor",
            )
        assert unexpected(problems) == []


async def test_the_preview_button_works_without_script(browser, console_url, operator, make_app):
    app = await make_app()
    watched = await new_page(browser, javascript=False)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.goto(f"{console_url}/apps/{app.app_id}/templates/page/confirmation-confirmed?locale=en")
    await page.get_by_label("HTML", exact=True).fill("<p>Thanks, {{ identity_value }}</p>")
    await page.get_by_role("button", name="Preview").click()
    await page.wait_for_selector('body[data-page="template-editor"]')
    await page.frame_locator("#preview-frame").get_by_text("Thanks, ann.example@example.com").wait_for()
    assert await page.input_value("#template-html") == "<p>Thanks, {{ identity_value }}</p>"
    assert unexpected(watched.problems) == []
    await page.context.close()


@pytest.fixture
async def topology(settings):
    own = Topology(f"userreg.test.console.{uuid.uuid4().hex[:10]}")
    connection = await aio_pika.connect(settings.amqp_dsn)
    try:
        await declare_topology(await connection.channel(), own)
    finally:
        await connection.close()
    yield own
    await delete_topology(settings.amqp_dsn, own)


async def test_replaying_a_dead_letter(browser, operator, make_app, settings, topology, start_console):
    app = await make_app(f"Deliveries {uuid.uuid4().hex[:6]}")
    events = [event_of(app, f"dead{n}@example.com") for n in range(2)]
    for event in events:
        await park(settings, topology, event, reason="550 <mailbox> unavailable")
    base_url = await start_console({"events_exchange": topology.exchange})
    problems = await look_at(
        browser,
        base_url,
        operator.email,
        operator.password,
        f"/apps/{app.app_id}/deliveries",
        "deliveries",
        data_page="deliveries",
    )
    watched = await new_page(browser)
    page = watched.page
    await sign_in(watched, base_url, operator.email, operator.password)
    await page.goto(f"{base_url}/apps/{app.app_id}/deliveries")
    await page.get_by_role("button", name=f"Replay the dead letter {events[0].id}").click()
    await page.wait_for_selector("text=The dead letter was sent back to the mailer")
    assert await queued_ids(settings, topology.mailer_queue) == [events[0].id]
    assert await page.get_by_role("button", name="Replay all 1").count() == 1
    assert watched.problems + problems == []
    await page.context.close()


async def test_every_apps_deliveries_filtered_and_paged_without_script(
    browser, console_url, operator, make_app, sessions
):
    app = await make_app(f"Paged deliveries {uuid.uuid4().hex[:6]}")
    now = datetime.now(UTC)
    sent = [str(uuid.uuid4()) for _ in range(PAGE_SIZE + 1)]
    dead = str(uuid.uuid4())
    async with sessions() as session, session.begin():
        session.add_all(
            [
                MailDelivery(
                    event_id=event_id,
                    template="confirmation",
                    app_id=app.app_id,
                    status=DeliveryStatus.SENT,
                    attempts=1,
                    sent_at=now - timedelta(seconds=number),
                )
                for number, event_id in enumerate(sent)
            ]
        )
        session.add(
            DeadLetter(
                event_id=dead,
                event_type="user.registered",
                app_id=app.app_id,
                attempts=3,
                reason="550 mailbox unavailable",
                payload={"user": {"email": "lost@example.com"}},
                dead_lettered_at=now - timedelta(hours=1),
            )
        )
    problems = await look_at(
        browser,
        console_url,
        operator.email,
        operator.password,
        f"/deliveries?app={app.app_id}",
        "deliveries-all",
        data_page="deliveries-all",
    )
    watched = await new_page(browser, javascript=False)
    page = watched.page
    await sign_in(watched, console_url, operator.email, operator.password)
    await page.get_by_role("link", name="All deliveries").click()
    await page.wait_for_selector('body[data-page="deliveries-all"]')
    await page.get_by_label("App", exact=True).select_option(label=app.name)
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_selector(f"text={sent[0]}")
    assert await page.locator(f"text={sent[-1]}").count() == 0
    await page.get_by_role("link", name="Older emails").click()
    await page.wait_for_selector(f"text={sent[-1]}")
    assert await page.locator(f"text={sent[0]}").count() == 0 and "(page 2)" in await page.inner_text("h2")
    await page.get_by_role("link", name="Newer emails").click()
    await page.wait_for_selector(f"text={sent[0]}")
    await page.get_by_label("State", exact=True).select_option("dead-lettered")
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_selector(f"text={dead}")
    assert "lost@example.com" in await page.inner_text("main")
    assert await page.locator(f"text={sent[0]}").count() == 0
    await shot(page, "deliveries-all-dead-lettered-no-script")
    assert watched.problems + problems == []
    await page.context.close()
