"""The password emails through the real mailer, RabbitMQ, PostgreSQL and the local inbox:
`user.password_reset_requested` → the `password-reset` email with its link, `user.password_changed`
→ the `password-changed` notice; with the guarantees of every email (claimed before sending, never
twice, retried, dead-lettered and replayable, the link's token in nothing the mailer keeps)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from functools import partial

from tests.integration.mailer.helpers import (
    QuotingServer,
    dead_letter_row,
    delivery_rows,
    make_changed_event,
    make_event,
    make_reset_event,
    reset_token_of,
    running_mailer,
    sent_rows,
    settings_for,
    token_forms,
)
from tests.support.polling import eventually
from userreg.mailer.app_lookup import APP_CACHE_SECONDS
from userreg.mailer.dead_letters import list_dead_letters, replay
from userreg.shared.db import Template
from userreg.shared.db.mail import DeliveryStatus
from userreg.shared.events import USER_PASSWORD_RESET_REQUESTED

EXPIRES = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


async def test_a_reset_request_becomes_the_reset_email_with_its_link(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Rocket Club")
    event = make_reset_event(app, name="Ada Lovelace", expires_at=EXPIRES)
    await publish(event)

    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.subject == "Reset your password for Rocket Club"
    assert message.message_id == f"<{event.id}.password-reset@mail.test>"
    assert message.parsed["To"] == f"Ada Lovelace <{event.user.email}>"
    assert message.parsed["Auto-Submitted"] == "auto-generated"
    assert message.parsed.get_content_type() == "multipart/alternative"
    url = event.password_reset.url
    assert f"\n{url}\n" in message.text and f'href="{url}"' in message.html
    assert "/reset-password/" in url and "/confirm/" not in message.text + message.html
    assert "Hi Ada Lovelace," in message.text and event.user.email in message.text
    assert "The link works once, until 2030-01-02 03:04 UTC." in message.text
    assert "2030-01-02 03:04 UTC" in message.html and '<html lang="en">' in message.html
    [row] = await sent_rows(sessions, event.id)
    assert (row.template, row.attempts) == ("password-reset", 1)


async def test_a_password_change_becomes_the_notice(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Rocket Club", welcome_email_enabled=True)  # the welcome email is no business here
    event = make_changed_event(app, name=None)
    await publish(event)

    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.subject == "Your password for Rocket Club was changed"
    assert message.message_id == f"<{event.id}.password-changed@mail.test>"
    assert message.parsed["To"] == event.user.email
    changed_on = event.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    assert message.text.startswith("Hello,")
    assert f"was changed on {changed_on}." in message.text and "If this was not you" in message.text
    assert changed_on in message.html and "If this was not you," in message.html
    assert "http" not in message.text
    [row] = await sent_rows(sessions, event.id)
    assert row.template == "password-changed"


async def test_a_german_user_gets_both_in_german(mailer, publish, inbox, make_app):
    app = await make_app("Schachklub")
    reset, changed = make_reset_event(app, name="Jürgen", locale="de-AT"), make_changed_event(app, locale="de")
    await publish(reset)
    await publish(changed)
    [reset_email] = await inbox.wait_for(lambda m: m.recipients == [reset.user.email])
    [notice] = await inbox.wait_for(lambda m: m.recipients == [changed.user.email])
    assert reset_email.subject == "Passwort für Schachklub zurücksetzen"
    assert "Hallo Jürgen," in reset_email.text and reset.password_reset.url in reset_email.text
    assert "Neues Passwort wählen" in reset_email.html and '<html lang="de">' in reset_email.html
    assert notice.subject == "Ihr Passwort für Schachklub wurde geändert"
    assert "Wenn Sie das nicht waren" in notice.text and '<html lang="de">' in notice.html


async def test_an_apps_overrides_are_used_and_the_subject_stays_one_safe_header(
    mailer, publish, inbox, make_app, sessions
):
    app = await make_app("Club")
    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="password-reset",
                locale="",
                subject="{{ user.name }}, your {{ app_name }} reset",
                text_body="New password: {{ reset_url }} (until {{ expires_at }}, "
                "{{ identity_name }}={{ identity_value }})",
            )
        )
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="password-changed",
                locale="de",
                subject="Geändert: {{ user.nickname }} {{ occurred_at[:4] }}",
            )
        )

    async def next_emails():
        reset = make_reset_event(app, name="Eve\r\nBcc: victim@example.com\r\n\r\nbody", expires_at=EXPIRES)
        changed = make_changed_event(app, locale="de", properties={"nickname": "<Addy>"})
        await publish(reset)
        await publish(changed)
        [reset_email] = await inbox.wait_for(lambda m: m.recipients == [reset.user.email])
        [notice] = await inbox.wait_for(lambda m: m.recipients == [changed.user.email])
        return (reset, reset_email, changed, notice) if reset_email.subject.startswith("Eve") else None

    reset, reset_email, changed, notice = await eventually(
        next_emails, timeout=APP_CACHE_SECONDS + 8, interval=0.2, what="the overrides to be used"
    )
    assert reset_email.subject == "Eve Bcc: victim@example.com body, your Club reset"
    assert reset_email.recipients == [reset.user.email] and inbox.to("victim@example.com") == []
    assert "bcc" not in [name.lower() for name, _ in reset_email.headers]
    assert reset_email.text.strip() == (
        f"New password: {reset.password_reset.url} (until 2030-01-02 03:04 UTC, email={reset.user.email})"
    )
    assert reset.password_reset.url in reset_email.html, "the part not overridden comes from the default"
    assert notice.subject == f"Geändert: <Addy> {changed.occurred_at.year}"


async def test_the_same_reset_event_twice_gives_one_email(mailer, publish, inbox, make_app, counters):
    counters.track("userreg_mailer_duplicates_total", template="password-reset")
    counters.track("userreg_mailer_events_total", outcome="duplicate")
    app = await make_app()
    event = make_reset_event(app)
    await publish(event)
    await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    await publish(event)
    await eventually(
        lambda: counters("userreg_mailer_events_total", outcome="duplicate") == 1,
        what="the second copy to be recognised",
    )
    assert counters("userreg_mailer_duplicates_total", template="password-reset") == 1
    assert len(inbox.to(event.user.email)) == 1


async def test_a_421_is_retried_and_the_notice_delivered_once(mailer, publish, inbox, make_app, sessions, counters):
    counters.track("userreg_mailer_retried_total", kind="smtp_4xx")
    app = await make_app()
    inbox.fail_next(1, 421)
    event = make_changed_event(app)
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.message_id == f"<{event.id}.password-changed@mail.test>"
    assert counters("userreg_mailer_retried_total", kind="smtp_4xx") == 1
    [row] = await sent_rows(sessions, event.id)
    assert row.attempts == 2


async def test_a_refused_reset_email_is_dead_lettered_without_its_token_and_replayed_with_it(
    mailer, mail_settings, publish, inbox, make_app, sessions
):
    app = await make_app()
    event = make_reset_event(app)
    token = reset_token_of(event)
    inbox.reject_recipient(event.user.email)
    await publish(event)

    row = await eventually(partial(dead_letter_row, sessions, event.id), what="the dead letter recorded")
    assert row.reason.startswith("recipient refused: 550")
    assert (row.event_type, row.app_id, row.attempts) == (USER_PASSWORD_RESET_REQUESTED, app.app_id, 1)
    assert row.payload["passwordReset"]["url"] == event.password_reset.url.removesuffix(token) + "[redacted]"
    assert row.payload["user"]["email"] == event.user.email
    [delivery] = await delivery_rows(sessions, event.id)
    assert delivery.status is DeliveryStatus.FAILED
    [listed] = [d for d in await list_dead_letters(mail_settings) if d["eventId"] == event.id]
    assert token not in json.dumps(listed) and listed["failure"] == "smtp_5xx"

    inbox.accept_recipient(event.user.email)
    assert await replay(mail_settings, [event.id]) == 1
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert event.password_reset.url in message.text  # the queue kept the working link
    await sent_rows(sessions, event.id)


async def test_a_reset_event_without_its_link_is_dead_lettered_as_malformed(
    mailer, mail_settings, publish, inbox, make_app, sessions
):
    app = await make_app()
    event = make_event(app, type=USER_PASSWORD_RESET_REQUESTED)  # a confirmation link, not a reset link
    await publish(event)
    row = await eventually(partial(dead_letter_row, sessions, event.id), what="the dead letter recorded")
    assert row.reason == "user.password_reset_requested without a passwordReset link"
    [listed] = [d for d in await list_dead_letters(mail_settings) if d["eventId"] == event.id]
    assert listed["failure"] == "malformed"
    assert inbox.messages == []


async def test_a_server_quoting_the_reset_email_leaves_no_form_of_its_token(
    settings, topologies, publish_to, make_app, sessions, caplog
):
    """A 554 that quotes the message (its base64 body and a quoted-printable copy): not in the
    delivery's last error, the dead letter's reason and record, the listing, nor the logs."""
    caplog.set_level(logging.DEBUG, logger="userreg")
    app = await make_app()
    async with sessions() as session, session.begin():
        # The link early in the body: what the reply quotes of it stays within the kept 500 characters.
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="password-reset",
                locale="",
                text_body="{{ reset_url }}\n\nThanks!",
            )
        )
    event = make_reset_event(app, expires_at=datetime.now(UTC) + timedelta(hours=1))
    token = reset_token_of(event)
    async with QuotingServer(554) as server:
        mail_settings = settings_for(settings, smtp_port=server.port)
        topologies.append(mail_settings)
        async with running_mailer(mail_settings):
            publish = await publish_to(mail_settings)
            await publish(event)
            row = await eventually(partial(dead_letter_row, sessions, event.id), what="the dead letter recorded")
            listed = await list_dead_letters(mail_settings)
    [reply] = server.replies
    assert {"base64", "quoted-printable"} <= set(token_forms(reply, token))  # the reply carried it
    [delivery] = await delivery_rows(sessions, event.id)
    logs = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("userreg"))
    kept = {
        "last_error": delivery.last_error,
        "reason": row.reason,
        "record": json.dumps(row.payload),
        "listing": json.dumps(listed),
        "logs": logs,
    }
    for where, text in kept.items():
        assert token_forms(text, token) == [], f"the token is in the {where}: {text}"
    assert row.reason.startswith("server answered 554 5.7.1 Message refused, it contains: [redacted]")
