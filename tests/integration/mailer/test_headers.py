"""No user data can end a mail header (the README's Security section "Mail headers"), through the real mailer to a real
inbox: every line break `str.splitlines()` knows and every control character, in a user's name (left
out of To, the email still sent) and in a property an app's subject template puts in (the subject
made one safe line), and in the recipient address (dead-lettered).

The cases share one app, inbox and mailer (a module-scoped event loop): starting them for each of
the ~70 characters would cost most of a minute.
"""

from __future__ import annotations

import email
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import policy
from functools import partial

import aio_pika
import pytest
import pytest_asyncio
from markupsafe import escape
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.integration.mailer.helpers import (
    HEADER_NAMES,
    ISSUE_NAME,
    Counters,
    Publisher,
    assert_clean_headers,
    bare_address,
    dead_letter_row,
    delivery_rows,
    make_event,
    remove_topology,
    running_mailer,
    settings_for,
    subject_of,
    unsafe_characters,
)
from tests.support.polling import eventually
from userreg.inbox import Inbox, ReceivedMessage
from userreg.shared.apps import create_app
from userreg.shared.db import App, Template, create_engine
from userreg.shared.events import Event
from userreg.shared.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="module")

APP_NAME = "Header Club"
# The welcome email's subject is an operator's override that shows user data.
WELCOME_SUBJECT = "Welcome {{ user.nickname }} ({{ user.name }})"
VICTIM = "victim@example.com"


@dataclass
class World:
    app: App
    inbox: Inbox
    publish: Publisher
    sessions: async_sessionmaker

    async def emails_of(self, event: Event) -> dict[str, ReceivedMessage]:
        """The event's two emails (confirmation, then welcome) by template name."""
        wanted = {f"<{event.id}.{name}@mail.test>": name for name in ("confirmation", "registration")}
        messages = await self.inbox.wait_for(lambda m: m.message_id in wanted, count=2)
        return {wanted[message.message_id]: message for message in messages}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(settings: Settings) -> AsyncIterator[World]:
    async with Inbox(smtp_port=0, http_port=None) as inbox:
        mail_settings = settings_for(settings, smtp_port=inbox.smtp_port)
        engine = create_engine(mail_settings)
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        connection = await aio_pika.connect_robust(mail_settings.amqp_dsn)
        try:
            async with sessions() as session, session.begin():
                app = await create_app(session, APP_NAME, email_confirmation_required=True, welcome_email_enabled=True)
                session.add(
                    Template(app_id=app.app_id, kind="email", name="registration", locale="", subject=WELCOME_SUBJECT)
                )
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            async with running_mailer(mail_settings):
                yield World(app, inbox, Publisher(channel, mail_settings.events_exchange), sessions)
        finally:
            await connection.close()
            await engine.dispose()
            await remove_topology(mail_settings)


def one_line(text: str, character: str) -> str:
    return " ".join(text.replace(character, " ").split())


@pytest.mark.parametrize("character", unsafe_characters())
async def test_an_unsafe_character_in_user_data_never_reaches_a_header(world: World, character: str):
    name = f"Eve{character}Reply-To: x@evil.example{character}{character}Locked!"
    nickname = f"{character}Bcc: {VICTIM}{character}Evil"
    event = make_event(world.app, name=name, properties={"nickname": nickname})
    await world.publish(event)
    emails = await world.emails_of(event)

    subjects = {}
    for template, message in emails.items():
        received = assert_clean_headers(message.data)
        subjects[template] = subject_of(received)
        assert bare_address(received) == event.user.email  # the name is left out, the email still sent
        assert message.recipients == [event.user.email]
        assert received["Message-ID"] == f"<{event.id}.{template}@mail.test>"
        assert received["From"] == "Test App <no-reply@mail.test>"
        text = received.get_body(preferencelist=("plain",)).get_content()
        html = received.get_body(preferencelist=("html",)).get_content()
        assert f"Hi {name}," in text  # the body shows the name as written
        assert f"Hi {escape(name)}," in html
    assert subjects["confirmation"] == f"Confirm your email address for {APP_NAME}"
    assert event.confirmation.url in emails["confirmation"].text
    assert subjects["registration"] == one_line(f"Welcome {nickname} ({name})", character)
    assert world.inbox.to(VICTIM) == []


async def test_the_issues_attack_adds_no_header_and_no_body(world: World):
    event = make_event(world.app, name=ISSUE_NAME, properties={"nickname": ISSUE_NAME})
    await world.publish(event)
    emails = await world.emails_of(event)

    confirmation = emails["confirmation"]
    received = assert_clean_headers(confirmation.data)
    assert "Reply-To" not in received and bare_address(received) == event.user.email
    assert received.preamble is None and received.epilogue in (None, "")
    # The attacker's words are in the (base64) body only, never in the message's own text.
    assert b"Reply-To" not in confirmation.data and b"Locked!" not in confirmation.data
    assert f"Hi {ISSUE_NAME}," in confirmation.text
    welcome = assert_clean_headers(emails["registration"].data)
    assert "Reply-To" not in welcome
    flat = "a Reply-To: x@evil.example Locked! see evil.example"
    assert subject_of(welcome) == f"Welcome {flat} ({flat})"


@pytest.mark.parametrize("character", unsafe_characters())
async def test_an_unsafe_character_in_the_address_dead_letters_the_event(
    world: World, character: str, counters: Counters
):
    counters.track("userreg_mailer_dead_lettered_total", kind="header_injection")
    address = f"eve-{uuid.uuid4().hex[:8]}@example.com"
    event = make_event(world.app, email=f"{address}{character}Bcc: {VICTIM}")
    await world.publish(event)
    await eventually(
        lambda: counters("userreg_mailer_dead_lettered_total", kind="header_injection") == 1,
        what="the event dead-lettered",
    )
    if character != "\0":  # PostgreSQL's jsonb takes no NUL: that dead letter stays in the queue only
        row = await eventually(partial(dead_letter_row, world.sessions, event.id), what="the dead letter recorded")
        assert row.reason == (
            "the recipient address contains a line break, a control character or an "
            "encoded word; it is never put into a mail header"
        )
    assert await delivery_rows(world.sessions, event.id) == []  # refused before anything was claimed
    assert world.inbox.to(VICTIM) == [] and world.inbox.to(address) == []


# What the email package would decode into a CR LF and write as it is, were it let into a header.
ENCODED_CRLF = "=?utf-8?q?=0D=0AReply-To=3A_x=40evil.example=0D=0A?="


async def test_an_encoded_word_in_user_data_is_never_decoded_into_a_header(world: World):
    event = make_event(world.app, name=f"Eve {ENCODED_CRLF}", properties={"nickname": ENCODED_CRLF})
    await world.publish(event)
    emails = await world.emails_of(event)
    for message in emails.values():
        received = assert_clean_headers(message.data)
        assert bare_address(received) == event.user.email
        assert f"Hi Eve {ENCODED_CRLF}," in message.text
    shown = ENCODED_CRLF.replace("=?", "= ?").replace("?=", "? =")
    assert subject_of(assert_clean_headers(emails["registration"].data)) == f"Welcome {shown} (Eve {shown})"


async def test_an_encoded_word_in_the_address_dead_letters_the_event(world: World, counters: Counters):
    counters.track("userreg_mailer_dead_lettered_total", kind="header_injection")
    event = make_event(world.app, email=f"{ENCODED_CRLF}@example.com")  # a valid address, to email-validator
    await world.publish(event)
    row = await eventually(partial(dead_letter_row, world.sessions, event.id), what="the dead letter recorded")
    assert row.reason.startswith("the recipient address contains a line break, a control character or an encoded word")
    assert counters("userreg_mailer_dead_lettered_total", kind="header_injection") == 1


async def test_a_safe_name_and_a_non_ascii_address_are_kept(world: World):
    address = f"zoë-{uuid.uuid4().hex[:8]}@exämple.com"
    event = make_event(world.app, email=address, name='Zoë "Z" Ünal, Jr.', properties={"nickname": "Z"})
    await world.publish(event)
    emails = await world.emails_of(event)
    subjects = {}
    for template, message in emails.items():
        assert message.recipients == [address]
        # Sent with SMTPUTF8: the headers are UTF-8 as they stand.
        received = email.message_from_string(message.data.decode("utf-8"), policy=policy.default)
        assert sorted(name for name, _ in received.items()) == sorted(HEADER_NAMES)
        [to] = received["To"].addresses
        assert (to.display_name, to.addr_spec) == ('Zoë "Z" Ünal, Jr.', address)
        subjects[template] = subject_of(received)
    assert subjects["registration"] == 'Welcome Z (Zoë "Z" Ünal, Jr.)'
