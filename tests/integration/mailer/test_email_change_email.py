"""The email-change email through the real mailer, RabbitMQ, PostgreSQL and the local inbox:
`user.email_change_requested` → the `email-change` email with its link, sent to the NEW address
(the user's current one gets nothing), in the user's language; an event without its link or new
address is dead-lettered, and the link's token is in nothing the mailer keeps."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.integration.mailer.helpers import dead_letter_row, make_event, sent_rows
from tests.support.polling import eventually
from userreg.shared.email_changes import email_change_url
from userreg.shared.events import USER_EMAIL_CHANGE_REQUESTED, Confirmation
from userreg.shared.tokens import new_token

EXPIRES = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)


def make_change_event(app, *, new_email: str | None = None, link: bool = True, **user):
    event = make_event(app, type=USER_EMAIL_CHANGE_REQUESTED, confirmation=False, **user)
    confirmation = (
        Confirmation(url=email_change_url("http://confirm.test.invalid", app.app_id, new_token()), expiresAt=EXPIRES)
        if link
        else None
    )
    return event.model_copy(
        update={"confirmation": confirmation, "new_email": new_email or f"new-{uuid.uuid4().hex[:10]}@example.com"}
    )


async def test_the_email_goes_to_the_new_address_with_its_link(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Rocket Club", welcome_email_enabled=True)  # the welcome email is no business here
    event = make_change_event(app, name="Ada Lovelace")
    await publish(event)

    [message] = await inbox.wait_for(lambda m: m.recipients == [event.new_email])
    assert message.subject == "Confirm your new email address for Rocket Club"
    assert message.message_id == f"<{event.id}.email-change@mail.test>"
    assert message.parsed["To"] == f"Ada Lovelace <{event.new_email}>"
    url = event.confirmation.url
    assert f"\n{url}\n" in message.text and f'href="{url}"' in message.html
    assert "/change-email/" in url and event.new_email in message.text and event.new_email in message.html
    assert "Hi Ada Lovelace," in message.text and "The link works until 2030-01-02 03:04 UTC." in message.text
    assert '<html lang="en">' in message.html
    [row] = await sent_rows(sessions, event.id)
    assert row.template == "email-change" and url.rsplit("/", 1)[1] not in str(row.__dict__)
    assert not [m for m in inbox.messages if event.user.email in m.recipients]


async def test_a_german_user_gets_it_in_german(mailer, publish, inbox, make_app):
    app = await make_app("Schachklub")
    event = make_change_event(app, name="Jürgen", locale="de")
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.recipients == [event.new_email])
    assert message.subject == "Bestätigen Sie Ihre neue E-Mail-Adresse für Schachklub"
    assert "Hallo Jürgen," in message.text and event.confirmation.url in message.text
    assert "Neue Adresse bestätigen" in message.html and '<html lang="de">' in message.html


async def test_an_event_without_its_link_is_dead_lettered_unsent(mailer, publish, inbox, make_app, sessions):
    app = await make_app("Rocket Club")
    event = make_change_event(app, link=False)
    await publish(event)
    row = await eventually(lambda: dead_letter_row(sessions, event.id), what="the dead letter recorded")
    assert "newEmail" in row.reason or "link" in row.reason
    assert not [m for m in inbox.messages if event.new_email in m.recipients]
