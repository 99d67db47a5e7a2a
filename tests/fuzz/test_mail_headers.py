"""Hypothesis fuzzing of the mail headers (the README's Security section): any Unicode text in the user data a template
puts into a header or a body (the user's name, a custom property an operator's subject shows),
published as an event to the real mailer, arrives in the real inbox (SMTP on a socket) with exactly
the mailer's headers: To the address (with the name only when it is safe), a one-line Subject
without a forbidden character, the event's Message-ID, and both parts as rendered.

The name and the subject are compared with their blanks set aside: the email package writes a run
of blanks in a name as one, and moves or loses blanks next to the encoded words it writes for text
that is not ASCII (RFC 2047 readers drop blanks between encoded words). Neither makes a header, it
only changes the spacing a reader sees.

Any text means every code point but lone surrogates, which neither the event's JSON nor the
database takes; line breaks, control characters, encoded words and header-like pieces are drawn
more often than chance would.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from tests.fuzz.conftest import FULL, report, weighted
from tests.integration.mailer.helpers import (
    ISSUE_NAME,
    UNSAFE,
    Publisher,
    assert_clean_headers,
    make_event,
    remove_topology,
    running_mailer,
    settings_for,
    subject_of,
)
from userreg.inbox import Inbox
from userreg.shared.db import App, Template
from userreg.shared.settings import Settings

# One worker runs the whole module.
pytestmark = pytest.mark.xdist_group("fuzz-mail-headers")

EXAMPLES = 4000 if FULL else 400
APP_NAME = "Fuzz Mail"
SUBJECT = "{{ user.nickname }} / {{ user.name }} / {{ app_name }}"
TEXT = "{{ user.name }}|{{ user.nickname }}|{{ confirmation_url }}"
HTML = "<p>{{ user.name }}|{{ user.nickname }}</p>"
MAX_DISPLAY_NAME = 200
_FORBIDDEN = re.compile("[" + re.escape("".join(UNSAFE)) + "]")
# What leaves a name out of To: a forbidden character, or an encoded word's start.
_UNSAFE = re.compile(f"{_FORBIDDEN.pattern}|=\\?")

any_character = st.characters(exclude_categories=("Cs",))
# Hypothesis draws control characters often; text meant to be kept is drawn without them.
safe_character = st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp"))
# Pieces a header's syntax gives meaning to, and blanks of every kind: all of them safe.
meaningful = st.sampled_from(
    [
        '"',
        "\\",
        "<",
        ">",
        "(",
        ")",
        ",",
        ";",
        ":",
        "@",
        "=",
        "?",
        "?=",
        " ",
        "  ",
        "\u00a0",
        "\u3000",
        "\u200d",
        "\ufeff",
        "\U0001d518",
        "Zoë",
        "Reply-To: x@evil.example",
    ]
)
# What would end a header, or be decoded into something that does.
breaking = st.one_of(
    st.text(st.sampled_from(UNSAFE), min_size=1, max_size=3),
    st.sampled_from(
        [
            "\r\n",
            "\n\n",
            "\r\nBcc: victim@example.com",
            ISSUE_NAME,
            "=?",
            "=?utf-8?q?=0D=0AReply-To=3A_x?=",
            "=?utf-8?b?DQpCY2M6IHhAeQ==?=",
            "=?utf-8?q?Bank?=",
        ]
    ),
)
safe_text = st.lists(weighted((3, st.text(safe_character, max_size=12)), (2, meaningful)), max_size=8).map("".join)
unsafe_text = st.lists(
    weighted((3, st.text(any_character, max_size=12)), (2, meaningful), (2, breaking)), min_size=1, max_size=8
).map("".join)
user_text = weighted(
    (6, safe_text), (5, unsafe_text), (1, st.text(any_character, min_size=MAX_DISPLAY_NAME - 5, max_size=260))
)


# Python's folder (3.11) now and then writes a broken encoded word (its "?=" end, or an escape,
# split over two lines) when it folds a subject's text that is not ASCII near a line's end: a reader
# then shows that word as it stands. It spoils how such a subject reads, never making a header:
# counted, not failed. (The text never holds "=?" itself: every one on the wire is the folder's.)
_ENCODED_WORD = re.compile(rb"=\?utf-8\?[qb]\?[^?\s]*\?=", re.IGNORECASE)


def _has_broken_encoded_word(data: bytes, name: bytes) -> bool:
    head = data.partition(b"\r\n\r\n")[0]
    header = re.search(rb"^" + name + rb":[^\r\n]*(?:\r\n[ \t][^\r\n]*)*", head, re.MULTILINE).group()
    return header.lower().count(b"=?utf-8?") != len(_ENCODED_WORD.findall(header))


def _without_blanks(value: str) -> str:
    return "".join(value.split())


def expected_subject(nickname: str, name: str) -> str:
    rendered = f"{nickname} / {name} / {APP_NAME}"
    cleaned = _FORBIDDEN.sub(" ", rendered).replace("=?", "= ?").replace("?=", "? =")
    return " ".join(cleaned.split())


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with Inbox(smtp_port=0, http_port=None) as running:
        yield running


@pytest.fixture
async def app(make_app, sessions) -> App:
    app = await make_app(APP_NAME, email_confirmation_required=True)
    async with sessions() as session, session.begin():
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="confirmation",
                locale="",
                subject=SUBJECT,
                text_body=TEXT,
                html_body=HTML,
            )
        )
    return app


@pytest.fixture
async def publish(settings: Settings, inbox: Inbox, amqp_connection) -> AsyncIterator[Publisher]:
    """The mailer, running and consuming, and a publisher of events for it."""
    mail_settings = settings_for(settings, smtp_port=inbox.smtp_port)
    try:
        async with running_mailer(mail_settings):
            channel = await amqp_connection.channel(publisher_confirms=True, on_return_raises=True)
            yield Publisher(channel, mail_settings.events_exchange)
            await channel.close()
    finally:
        await remove_topology(mail_settings)


@pytest.fixture(scope="module")
def seen(request: pytest.FixtureRequest):
    counts: Counter[str] = Counter()
    yield counts
    summary = ", ".join(f"{what}: {count}" for what, count in sorted(counts.items()) if what != "emails")
    report(
        request,
        "test_mail_headers",
        f"test_mail_headers: {counts['emails']} emails{' (full run)' if FULL else ''}\n  {summary}",
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(name=st.one_of(st.none(), user_text), nickname=user_text)
async def test_any_user_data_arrives_with_exactly_the_mailers_headers(
    name: str | None, nickname: str, app: App, inbox: Inbox, publish: Publisher, seen: Counter
) -> None:
    event = make_event(app, name=name, properties={"nickname": nickname})
    await publish(event)
    [message] = await inbox.wait_for(lambda m: m.message_id == f"<{event.id}.confirmation@mail.test>")
    inbox.clear()

    received = assert_clean_headers(message.data)
    assert received["Message-ID"] == f"<{event.id}.confirmation@mail.test>"
    assert message.recipients == [event.user.email]
    [to] = received["To"].addresses  # exactly one, whatever the name holds
    assert to.addr_spec == event.user.email
    shown = (name or "").strip()
    if to.display_name:
        assert name is not None and not _UNSAFE.search(name) and len(name) <= MAX_DISPLAY_NAME
        assert _without_blanks(to.display_name) == _without_blanks(shown)
        seen["name kept"] += 1
    else:
        # Left out: unsafe, too long, blank, or (Python's folder losing its quotes) not read back as itself.
        assert str(received["To"]) == event.user.email
        seen["name left out"] += 1
        if name is not None and not _UNSAFE.search(name) and len(name) <= MAX_DISPLAY_NAME and shown:
            seen["name left out, would not read back"] += 1

    subject = subject_of(received)
    assert not _FORBIDDEN.search(subject)
    if _has_broken_encoded_word(message.data, b"Subject"):
        seen["subject spoilt by Python's folder"] += 1
    else:
        assert _without_blanks(subject) == _without_blanks(expected_subject(nickname, name or ""))
    seen["subject cleaned"] += subject != f"{nickname} / {name or ''} / {APP_NAME}"

    text = received.get_body(preferencelist=("plain",)).get_content()
    html = received.get_body(preferencelist=("html",)).get_content()
    assert text == f"{name or ''}|{nickname}|{event.confirmation.url}"
    assert html == f"<p>{escape(name or '')}|{escape(nickname)}</p>"
    seen["emails"] += 1
