"""Events become emails: the right ones, to the right person, with the right content."""

from __future__ import annotations

import uuid

from tests.integration.mailer.helpers import make_event, running_mailer, sent_rows
from tests.support.polling import eventually
from userreg.mailer.app_lookup import APP_CACHE_SECONDS
from userreg.mailer.keys import SENDER
from userreg.mailer.sending import RecordingSender
from userreg.shared.db import Template
from userreg.shared.events import USER_CONFIRMATION_REQUESTED


async def test_registered_event_becomes_one_confirmation_email(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Rocket Club", email_confirmation_required=True)
    event = make_event(app, name="Ada Lovelace")
    await publish(event)

    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.mail_from == "no-reply@mail.test"
    assert message.parsed["To"] == f"Ada Lovelace <{event.user.email}>"
    assert message.parsed["From"] == "Test App <no-reply@mail.test>"
    assert message.subject == "Confirm your email address for Rocket Club"
    assert message.message_id == f"<{event.id}.confirmation@mail.test>"
    assert message.parsed["Auto-Submitted"] == "auto-generated"
    assert message.parsed.get_content_type() == "multipart/alternative"
    assert event.confirmation.url in message.text
    assert "Hi Ada Lovelace," in message.text
    assert f'href="{event.confirmation.url}"' in message.html
    assert "Rocket Club" in message.html
    assert "The link works until" in message.text
    [row] = await sent_rows(sessions, event.id)
    assert (row.template, row.attempts) == ("confirmation", 1)


async def test_confirmation_requested_event_sends_the_new_link(mailer, publish, inbox, make_app):
    app = await make_app(email_confirmation_required=True)
    event = make_event(app, type=USER_CONFIRMATION_REQUESTED)
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert event.confirmation.url in message.text


async def test_welcome_email_when_the_app_enables_it(mailer, publish, inbox, make_app):
    app = await make_app("Chess Club", welcome_email_enabled=True)
    event = make_event(app, confirmation=False, name=None)
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.subject == "Welcome to Chess Club"
    assert message.message_id == f"<{event.id}.registration@mail.test>"
    assert message.parsed["To"] == event.user.email  # no name, no display name
    assert "Hello," in message.text
    assert f"You sign in with your email: {event.user.email}" in message.text
    assert "confirm your email address" not in message.text


async def test_confirmation_and_welcome_are_two_separate_emails(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Both", email_confirmation_required=True, welcome_email_enabled=True)
    event = make_event(app)
    await publish(event)
    messages = await inbox.wait_for(lambda m: m.recipients == [event.user.email], count=2)
    assert sorted(m.message_id for m in messages) == [
        f"<{event.id}.confirmation@mail.test>",
        f"<{event.id}.registration@mail.test>",
    ]
    rows = await sent_rows(sessions, event.id, 2)
    assert [row.template for row in rows] == ["confirmation", "registration"]


async def test_events_that_need_no_email_are_settled_without_one(mailer, publish, inbox, make_app, counters):
    counters.track("userreg_mailer_events_total", outcome="nothing_to_send")
    app = await make_app()  # neither confirmation nor welcome email
    no_email_needed = make_event(app, confirmation=False)
    no_address = make_event(app, email="", name="Guest")
    for event in (no_email_needed, no_address):
        await publish(event)
    await eventually(
        lambda: counters("userreg_mailer_events_total", outcome="nothing_to_send") >= 2, what="both events settled"
    )
    assert inbox.messages == []


async def test_german_user_gets_the_german_default(mailer, publish, inbox, make_app):
    app = await make_app("Schachklub", email_confirmation_required=True, welcome_email_enabled=True)
    event = make_event(app, name="Jürgen", locale="de-AT")
    await publish(event)
    messages = await inbox.wait_for(lambda m: m.recipients == [event.user.email], count=2)
    by_subject = {m.subject: m for m in messages}
    assert set(by_subject) == {"Bestätigen Sie Ihre E-Mail-Adresse für Schachklub", "Willkommen bei Schachklub"}
    confirmation = by_subject["Bestätigen Sie Ihre E-Mail-Adresse für Schachklub"]
    assert "Hallo Jürgen," in confirmation.text
    assert "E-Mail-Adresse bestätigen" in confirmation.html
    assert '<html lang="de">' in confirmation.html


async def test_unknown_locale_falls_back_to_english(mailer, publish, inbox, make_app):
    app = await make_app("Club", email_confirmation_required=True)
    event = make_event(app, locale="pt-BR")
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert message.subject == "Confirm your email address for Club"


async def test_script_in_a_users_name_is_escaped_in_html(mailer, publish, inbox, make_app):
    app = await make_app("Club <b>&</b>", email_confirmation_required=True)
    event = make_event(app, name='<script>alert("x")</script>')
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in message.html
    assert "Club &lt;b&gt;&amp;&lt;/b&gt;" in message.html
    # The text part is plain text: shown as written, nothing to escape.
    assert 'Hi <script>alert("x")</script>,' in message.text


async def test_line_breaks_in_a_name_never_make_a_header(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Club", email_confirmation_required=True)
    async with sessions() as session, session.begin():
        # An operator's subject that puts the user's name into a header.
        session.add(
            Template(app_id=app.app_id, kind="email", name="confirmation", locale="", subject="Hi {{ user.name }}!")
        )
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    event = make_event(app, name=f"Eve\r\nBcc: {victim}\r\nX-Injected: yes\n\nbody")
    await publish(event)
    [message] = await inbox.wait_for(lambda m: event.user.email in m.recipients)
    assert message.recipients == [event.user.email]
    names = [name.lower() for name, _ in message.headers]
    assert "bcc" not in names and "x-injected" not in names
    assert sorted(names) == sorted(
        ["from", "to", "subject", "date", "message-id", "auto-submitted", "content-type", "mime-version"]
    )
    assert message.parsed["To"] == event.user.email  # the unsafe name is left out of To
    assert message.subject == f"Hi Eve Bcc: {victim} X-Injected: yes body!"  # one line, one header
    assert inbox.to(victim) == []


async def test_app_override_is_used_without_a_restart(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Club", email_confirmation_required=True)
    before = make_event(app)
    await publish(before)
    [first] = await inbox.wait_for(lambda m: m.recipients == [before.user.email])
    assert first.subject == "Confirm your email address for Club"

    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="confirmation",
                locale="",
                subject="{{ app_name }}: one click for {{ user.nickname }}",
                text_body="Go to {{ confirmation_url }} ({{ identity_name }}={{ identity_value }}, "
                "colour {{ user.items }}) until {{ expires_at }}",
                html_body="<p>{{ user.nickname }}: <a href='{{ confirmation_url }}'>confirm</a></p>",
            )
        )

    async def next_email():
        """Register someone and return their email (the mailer reads templates anew within seconds)."""
        event = make_event(app, properties={"nickname": "<Addy>", "items": "teal"})
        await publish(event)
        [message] = await inbox.wait_for(lambda m: m.recipients == [event.user.email])
        return event, message

    event, second = await eventually(
        lambda: _with_override(next_email), timeout=APP_CACHE_SECONDS + 8, interval=0.2, what="the override to be used"
    )
    assert second.subject == "Club: one click for <Addy>"
    assert second.text.startswith(f"Go to {event.confirmation.url} (email={event.user.email}, colour teal) until ")
    assert second.html.strip() == f"<p>&lt;Addy&gt;: <a href='{event.confirmation.url}'>confirm</a></p>"


async def _with_override(next_email):
    event, message = await next_email()
    return (event, message) if message.subject.startswith("Club: ") else None


async def test_the_sender_given_to_create_app_is_the_one_that_sends(mail_settings, publish, inbox, make_app, sessions):
    sender = RecordingSender()
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    async with running_mailer(mail_settings, sender=sender) as server:
        assert server.app[SENDER] is sender
        await publish(event)
        await sent_rows(sessions, event.id)
    [email] = sender.sent
    assert (email.mail_from, email.rcpt_to) == ("no-reply@mail.test", event.user.email)
    assert email.message["Message-ID"] == f"<{event.id}.confirmation@mail.test>"
    assert sender.closed  # closed with the app
    assert inbox.messages == []  # nothing went over SMTP
