"""The mailer's rules, without a broker, a database or a server."""

from __future__ import annotations

import asyncio
import base64
import email
import json
import quopri
import sys
import time
import unicodedata
from datetime import UTC, datetime
from email import policy

import aiosmtplib
import pytest
from pydantic import ValidationError

from tests.integration.mailer.helpers import (
    ISSUE_NAME,
    UNSAFE,
    assert_clean_headers,
    bare_address,
    subject_of,
    token_forms,
    unsafe_characters,
)
from userreg.mailer.compose import Recipient, build_message, message_id, parse_mail_from, recipient_of
from userreg.mailer.envelope import decode_event
from userreg.mailer.headers import FORBIDDEN_IN_HEADERS, header_text, header_value, is_header_safe
from userreg.mailer.rules.emails import emails_for
from userreg.mailer.rules.policy import (
    PermanentFailure,
    TransientFailure,
    classify_smtp_error,
    deferral_delay,
    retry_delay,
)
from userreg.mailer.rules.redaction import redact
from userreg.mailer.smtp import serialise
from userreg.mailer.variables import UserProperties, template_context
from userreg.shared.batching import Batcher
from userreg.shared.events import (
    USER_CONFIRMATION_REQUESTED,
    USER_CONFIRMED,
    USER_REGISTERED,
    Confirmation,
    Event,
    EventUser,
)
from userreg.shared.messaging import Topology
from userreg.shared.settings import Settings
from userreg.shared.templates import RenderedEmail, TemplateSource, TemplateStore

LINK = "https://confirm.example/APP/confirm/" + "A" * 43


def _event(type: str = USER_REGISTERED, *, confirmation: bool = True, **user: object) -> Event:
    fields = {
        "objectId": "U1",
        "identityProperty": "email",
        "identity": "ada@example.com",
        "email": "ada@example.com",
        "name": "Ada",
        **user,
    }
    return Event(
        type=type,
        appId="APP",
        user=EventUser(**fields),
        confirmation=Confirmation(url=LINK, expiresAt=datetime(2030, 1, 2, 3, 4, tzinfo=UTC)) if confirmation else None,
    )


@pytest.mark.parametrize(
    ("type", "confirmation", "welcome", "expected"),
    [
        (USER_REGISTERED, True, False, ("confirmation",)),
        (USER_REGISTERED, False, True, ("registration",)),
        (USER_REGISTERED, True, True, ("confirmation", "registration")),
        (USER_REGISTERED, False, False, ()),
        (USER_CONFIRMATION_REQUESTED, True, True, ("confirmation",)),
        (USER_CONFIRMED, False, True, ()),
    ],
)
def test_which_emails_an_event_causes(type, confirmation, welcome, expected):
    assert emails_for(_event(type, confirmation=confirmation), welcome_email_enabled=welcome) == expected


def test_a_resend_without_a_link_is_malformed():
    with pytest.raises(PermanentFailure) as failure:
        emails_for(_event(USER_CONFIRMATION_REQUESTED, confirmation=False), welcome_email_enabled=False)
    assert failure.value.kind == "malformed"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"type": "user.registered"}',
        _event().to_bytes().replace(b'"version":1', b'"version":2'),
    ],
    ids=["empty", "not-json", "array", "no-fields", "version-2"],
)
def test_malformed_bodies_are_permanent_failures(body):
    with pytest.raises(PermanentFailure) as failure:
        decode_event(body)
    assert failure.value.kind == "malformed"


def test_an_event_id_must_be_a_uuid():
    with pytest.raises(PermanentFailure, match="UUID"):
        decode_event(_event().model_copy(update={"id": "1; DROP TABLE"}).to_bytes())
    event = _event()
    assert decode_event(event.to_bytes()) == event


def test_the_forbidden_characters_are_every_line_end_and_every_control_character():
    every = map(chr, range(sys.maxunicode + 1))
    computed = {c for c in every if len(f"a{c}b".splitlines()) > 1 or unicodedata.category(c) == "Cc"}
    assert set(FORBIDDEN_IN_HEADERS) == computed == set(UNSAFE)
    assert len(UNSAFE) == 67  # C0 (32), DEL, C1 (32), U+2028, U+2029


@pytest.mark.parametrize("character", unsafe_characters())
def test_a_value_with_a_line_break_or_a_control_character_is_refused(character):
    for value in (character, f"a{character}b", f"fine{character}", f"a{character}Bcc: x@example.com"):
        assert not is_header_safe(value)
        with pytest.raises(PermanentFailure) as failure:
            header_value(value, "subject")
        assert failure.value.kind == "header_injection"
    assert header_text(f" a{character}{character}b {character}") == "a b"


@pytest.mark.parametrize(
    "value",
    ["fine: value", "Zoë Ünal", "non\u00a0breaking", "emoji 👩\u200d💻", "", "a = b? c?= d=", "= ?utf-8?q?x?="],
    ids=["ascii", "latin", "nbsp", "zwj", "empty", "equals-question", "broken-encoded-word"],
)
def test_other_values_are_header_safe(value):
    assert is_header_safe(value) and header_value(value, "subject") == value


# The email package decodes an encoded word wherever it parses one, an address included, and writes
# the CR LF it decodes to as it is: these would be header injections if they reached the registry.
ENCODED_CRLF = "=?utf-8?q?=0D=0AReply-To=3A_x=40evil.example=0D=0A?="
# How a subject shows it: the start and end broken up, never decoded.
ENCODED_CRLF_SHOWN = "= ?utf-8?q? =0D=0AReply-To=3A_x=40evil.example=0D=0A? ="


def test_header_text_is_one_line_without_forbidden_characters():
    assert header_text("Hi\x0bEve\u2028Reply-To: x@evil.example\x85\x00!") == ("Hi Eve Reply-To: x@evil.example !")
    assert header_text("  Hello   world \t") == "Hello world"
    assert header_text("\r\n\x1c") == ""
    assert header_text(f"Hi {ENCODED_CRLF}") == f"Hi {ENCODED_CRLF_SHOWN}"
    assert header_text("==??=?=") == "== ?? = ? =" and is_header_safe(header_text("==??=?="))


def test_an_encoded_word_is_never_put_into_a_header():
    assert not is_header_safe(ENCODED_CRLF) and not is_header_safe("a=?b")
    assert recipient_of(_event(name=f"Eve {ENCODED_CRLF}").user).display_name is None
    with pytest.raises(PermanentFailure) as failure:
        recipient_of(_event(email=f"{ENCODED_CRLF}@example.com").user)
    assert failure.value.kind == "header_injection"
    with pytest.raises(ValueError, match="encoded word"):
        parse_mail_from(f"{ENCODED_CRLF} <no-reply@club.example>")
    data = _wire(RenderedEmail(subject=f"Hi {ENCODED_CRLF}", text="t", html="h"), recipient_of(_event().user))
    received = assert_clean_headers(data)
    assert subject_of(received) == f"Hi {ENCODED_CRLF_SHOWN}"
    assert str(received["To"]) == "Ada <ada@example.com>"


@pytest.mark.parametrize("character", unsafe_characters())
def test_recipient_drops_a_name_with_any_unsafe_character(character):
    for name in (f"Eve{character}Bcc: x@example.com", f"{character}Eve", f"Eve{character}"):
        recipient = recipient_of(_event(name=name).user)
        assert (recipient.address, recipient.display_name) == ("ada@example.com", None)


def test_recipient_keeps_a_safe_name_and_drops_an_unsafe_one():
    assert recipient_of(_event().user).display_name == "Ada"
    assert recipient_of(_event(name=" Ada ").user).display_name == "Ada"
    assert recipient_of(_event(name="Eve\r\nBcc: x@example.com").user).display_name is None
    assert recipient_of(_event(name=ISSUE_NAME).user).display_name is None
    assert recipient_of(_event(name="   ").user).display_name is None
    assert recipient_of(_event(name="x" * 201).user).display_name is None
    assert recipient_of(_event(email=None).user) is None
    assert recipient_of(_event(email="Ada@EXAMPLE.com").user).address == "Ada@example.com"


@pytest.mark.parametrize("address", ["not-an-address", "a@b@c", "ada@example.com\r\nBcc: x@example.com"])
def test_an_invalid_recipient_is_a_permanent_failure(address):
    with pytest.raises(PermanentFailure):
        recipient_of(_event(email=address).user)


@pytest.mark.parametrize("character", unsafe_characters())
def test_an_address_with_an_unsafe_character_is_a_permanent_failure(character):
    with pytest.raises(PermanentFailure) as failure:
        recipient_of(_event(email=f"ada@example.com{character}Bcc: x@example.com").user)
    assert failure.value.kind == "header_injection"


def test_sender_from_settings():
    mail_from = parse_mail_from("Rocket Club <hello@rocket.example>")
    assert (mail_from.address, mail_from.domain) == ("hello@rocket.example", "rocket.example")
    assert str(parse_mail_from("Müller Club <no-reply@club.example>").from_header) == (
        "Müller Club <no-reply@club.example>"
    )
    long_group = ("a: x@evil.example, " * 5).strip()
    for bad in ("nobody", "Club <x@y>\r\nBcc: z@w", f'"{long_group}" <no-reply@club.example>'):
        with pytest.raises(ValueError):
            parse_mail_from(bad)


@pytest.mark.parametrize("character", unsafe_characters())
def test_a_mail_from_with_an_unsafe_character_is_refused_at_start_up(character):
    for mail_from in (f"Club{character} <hello@club.example>", f"Club <hello@club.example>{character}"):
        with pytest.raises(ValueError, match="line break, a control character"):
            parse_mail_from(mail_from)


MAIL_FROM = parse_mail_from("Club <no-reply@club.example>")


def _wire(rendered: RenderedEmail, recipient: Recipient, event_id: str = "E") -> bytes:
    message = build_message(rendered, event_id=event_id, template="confirmation", mail_from=MAIL_FROM, to=recipient)
    data, _ = serialise(message, MAIL_FROM.address, recipient.address)
    return data


def test_message_is_multipart_with_stable_message_id_and_checked_headers():
    event = _event(name="Zoë")
    recipient = recipient_of(event.user)
    rendered = RenderedEmail(subject="Bestätigen", text="plain ✓", html="<p>rich ✓</p>")
    message = build_message(rendered, event_id=event.id, template="confirmation", mail_from=MAIL_FROM, to=recipient)
    again = build_message(rendered, event_id=event.id, template="confirmation", mail_from=MAIL_FROM, to=recipient)
    assert message["Message-ID"] == again["Message-ID"] == f"<{event.id}.confirmation@club.example>"
    assert message_id(event.id, "registration", "club.example") != message["Message-ID"]
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert str(message["To"]) == "Zoë <ada@example.com>"
    wire = message.as_bytes()
    assert b"\r\nSubject: =?utf-8?q?Best=C3=A4tigen?=\r\n" in wire
    received = assert_clean_headers(_wire(rendered, recipient, event.id))
    assert (received.get_body(("plain",)).get_content(), received.get_body(("html",)).get_content()) == (
        "plain ✓",
        "<p>rich ✓</p>",
    )


def test_every_header_is_made_by_the_header_registry():
    message = build_message(
        RenderedEmail(subject="Hi", text="t", html="h"),
        event_id="E",
        template="confirmation",
        mail_from=MAIL_FROM,
        to=recipient_of(_event().user),
    )
    for name, value in message.items():
        assert hasattr(value, "fold") and value.name == name, name  # not a raw string (set_raw)


@pytest.mark.parametrize("character", unsafe_characters())
def test_a_subject_with_an_unsafe_character_is_sent_as_one_safe_line(character):
    subject = f"Hi {character}Eve{character}Reply-To: x@evil.example{character}{character}"
    received = assert_clean_headers(
        _wire(RenderedEmail(subject=subject, text="t", html="h"), recipient_of(_event(name=f"Eve{character}").user))
    )
    assert subject_of(received) == "Hi Eve Reply-To: x@evil.example"
    assert bare_address(received) == "ada@example.com"


def test_the_issues_name_makes_no_header():
    recipient = recipient_of(_event(name=ISSUE_NAME).user)
    data = _wire(RenderedEmail(subject=f"Welcome {ISSUE_NAME}", text=ISSUE_NAME, html="h"), recipient)
    received = assert_clean_headers(data)
    assert bare_address(received) == "ada@example.com"
    assert subject_of(received) == "Welcome a Reply-To: x@evil.example Locked! see evil.example"
    assert received.get_body(("plain",)).get_content() == ISSUE_NAME


@pytest.mark.parametrize(
    "name",
    [
        "a: x@evil.example, " * 5,
        "Reply-To: x@evil.example " * 4,
        "0000Reply-To: x@evil.exampleReply-To: x@evil.exampleReply-To: x@evil.example",
    ],
    ids=["group", "reply-to", "fuzzed"],
)
def test_a_name_python_would_write_without_its_quotes_is_left_out(name):
    # Python's folder (3.11) drops the quotes of a display name too long for a line: these names
    # would be read as a group and addresses of their own, x@evil.example among them.
    recipient = recipient_of(_event(name=name).user)
    assert recipient.display_name is None
    received = assert_clean_headers(_wire(RenderedEmail(subject="s", text="t", html="h"), recipient))
    assert bare_address(received) == "ada@example.com"


@pytest.mark.parametrize(
    "name",
    ["a: x@evil.example, b <y@evil.example>", 'Zoë "q" a: x@evil.example, ' * 3, "Ünal " * 30],
    ids=["short-specials", "long-not-ascii", "long-words"],
)
def test_a_name_that_reads_back_as_itself_is_kept_whatever_it_holds(name):
    recipient = recipient_of(_event(name=name).user)
    assert recipient.display_name == name.strip()
    received = assert_clean_headers(_wire(RenderedEmail(subject="s", text="t", html="h"), recipient))
    [to] = received["To"].addresses
    assert to.addr_spec == "ada@example.com"
    assert "".join(to.display_name.split()) == "".join(name.split())  # the folder may move blanks


def test_an_unsafe_message_id_is_a_permanent_failure():
    # `decode_event` takes "\u2028" + 31 hex digits for a UUID (int() skips blanks); the header does not.
    with pytest.raises(PermanentFailure) as failure:
        build_message(
            RenderedEmail(subject="s", text="t", html="h"),
            event_id="\u2028" + "1" * 31,
            template="confirmation",
            mail_from=MAIL_FROM,
            to=recipient_of(_event().user),
        )
    assert failure.value.kind == "header_injection"


@pytest.mark.parametrize(
    "name", ['Ada "Countess" Lovelace, Jr.', "Zoë Ünal", "Ada (admin) <root@example.com>", "back\\slash", "x" * 150]
)
def test_names_and_subjects_arrive_as_written(name):
    mail_from = parse_mail_from("Club <no-reply@club.example>")
    recipient = recipient_of(_event(name=name).user)
    message = build_message(
        RenderedEmail(subject=f"Hello {name}", text="t", html="h"),
        event_id="E",
        template="confirmation",
        mail_from=mail_from,
        to=recipient,
    )
    data, utf8 = serialise(message, mail_from.address, recipient.address)
    received = email.message_from_bytes(data, policy=policy.default)
    assert not utf8 and data.isascii()
    assert [(a.display_name, a.addr_spec) for a in received["To"].addresses] == [(name, "ada@example.com")]
    assert subject_of(received) == f"Hello {name}"
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_a_non_ascii_address_keeps_its_name():
    recipient = recipient_of(_event(email="zoë@exämple.com", name="Zoë").user)
    message = build_message(
        RenderedEmail(subject="s", text="t", html="h"),
        event_id="E",
        template="confirmation",
        mail_from=MAIL_FROM,
        to=recipient,
    )
    data, utf8 = serialise(message, MAIL_FROM.address, recipient.address)
    assert utf8
    received = email.message_from_string(data.decode("utf-8"), policy=policy.default)
    assert [(a.display_name, a.addr_spec) for a in received["To"].addresses] == [("Zoë", "zoë@exämple.com")]


def test_template_variables():
    event = _event(properties={"email": "ada@example.com", "items": "a column", "score": 3})
    context = template_context(event, app_name="Club")
    assert context["app_name"] == "Club"
    assert (context["identity_name"], context["identity_value"]) == ("email", "ada@example.com")
    assert context["confirmation_url"] == LINK
    assert context["expires_at"] == "2030-01-02 03:04 UTC"
    user = context["user"]
    assert (user.items, user.score, user["score"], user.objectId, user.name) == ("a column", 3, 3, "U1", "Ada")
    with pytest.raises(AttributeError):
        user.missing  # noqa: B018
    assert template_context(_event(confirmation=False), app_name="Club")["confirmation_url"] is None


def test_user_properties_in_the_sandbox():
    context = template_context(_event(properties={"keys": "k", "__html__": "x"}), app_name="Club")
    rendered = TemplateStore.from_settings(Settings()).render_email(
        TemplateSource(
            subject="{{ user.keys }} {{ user.nope }}",
            text="{{ user._values }}",
            html="{{ user['__html__'] }} {% for column in user %}{{ column }} {% endfor %}",
        ),
        context,
    )
    assert rendered.subject == "k"
    assert rendered.text == ""  # underscored names stay out of templates' reach
    assert rendered.html.split() == ["x", "keys", "__html__", "objectId", "email", "name"]
    assert len(UserProperties({"a": 1})) == 1


@pytest.mark.parametrize(
    ("error", "transient", "kind"),
    [
        (aiosmtplib.SMTPConnectError("refused"), True, "connection"),
        (ConnectionRefusedError(), True, "connection"),
        (aiosmtplib.SMTPServerDisconnected("gone"), True, "connection"),
        (aiosmtplib.SMTPReadTimeoutError("slow"), True, "timeout"),
        (TimeoutError(), True, "timeout"),
        (aiosmtplib.SMTPDataError(421, "busy"), True, "smtp_4xx"),
        (aiosmtplib.SMTPSenderRefused(451, "later", "x@y"), True, "smtp_4xx"),
        (aiosmtplib.SMTPDataError(554, "spam"), False, "smtp_5xx"),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")]),
            False,
            "smtp_5xx",
        ),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(452, "full", "x@y")]), True, "smtp_4xx"),
        (aiosmtplib.SMTPNotSupported("SMTPUTF8"), False, "smtp_unsupported"),
    ],
)
def test_smtp_errors_are_transient_or_permanent(error, transient, kind):
    failure = classify_smtp_error(error)
    assert isinstance(failure, TransientFailure if transient else PermanentFailure)
    assert (failure.transient, failure.kind) == (transient, kind)


def test_failure_reasons_never_carry_a_link_token():
    failure = classify_smtp_error(aiosmtplib.SMTPDataError(554, f"rejected content: {LINK}\r\nmore"))
    assert "A" * 43 not in failure.reason and "/confirm/[redacted]" in failure.reason
    assert "\n" not in failure.reason
    assert redact("no link here") == "no link here"


# A token as tokens are made: 43 URL-safe base64 characters.
TOKEN = "q7Hk-2mZ_rT9vYwX4bN8cL1pQ6sD0fG5jK3hV-_aB2e"
TOKEN_LINK = f"http://confirm.test.invalid/0A1B2C3D-1111-2222-3333-444455556666/confirm/{TOKEN}"


def _quoting_reply(prefix: str, separator: str = "\n") -> str:
    """An SMTP reply's text as aiosmtplib hands it over, quoting a body that carries the link:
    its base64 lines, then a quoted-printable copy (soft line breaks inside the link)."""
    body = f"{prefix}Hi Ada,\n\nplease confirm your address for the Rocket Club:\n{TOKEN_LINK}\n\nBye"
    quoted = [
        *base64.encodebytes(body.encode()).decode().splitlines(),
        *quopri.encodestring(body.encode()).decode().splitlines(),
    ]
    return separator.join(["5.7.1 Message refused, it contains:", *quoted, "Goodbye"])


@pytest.mark.parametrize("prefix", ["", "x", "xy", "\u00e4"], ids=["offset-0", "offset-1", "offset-2", "utf-8"])
@pytest.mark.parametrize("separator", ["\n", " "], ids=["lines", "joined"])
def test_failure_reasons_carry_no_form_of_a_token(prefix, separator):
    reply = _quoting_reply(prefix, separator)
    assert {"base64", "quoted-printable"} <= set(token_forms(reply, TOKEN))  # the reply does carry it
    failure = classify_smtp_error(aiosmtplib.SMTPDataError(554, reply))
    assert token_forms(failure.reason, TOKEN) == []
    assert token_forms(redact(reply), TOKEN) == []
    # The code and the server's own words stay.
    assert failure.reason.startswith("server answered 554 5.7.1 Message refused, it contains: ")
    assert failure.reason.endswith(" Goodbye") and "[redacted]" in failure.reason


@pytest.mark.parametrize(
    "text",
    [
        "server answered 550 5.1.1 <ada@example.com>: Recipient address rejected: User unknown in virtual "
        "mailbox table",
        "SMTP connection failed: ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 1025)",
        "timed out talking to the SMTP server: SMTPReadTimeoutError",
        "app 0A1B2C3D-1111-2222-3333-444455556666 does not exist",
        "gave up after 3 attempts; last error: server answered 451 4.3.0 Temporary trouble",
        "the confirmation template of app 0A1B2C3D-1111-2222-3333-444455556666 cannot be rendered: "
        "UndefinedError: 'dict object' has no attribute 'x'",
    ],
    ids=["550", "refused", "timeout", "unknown-app", "gave-up", "template"],
)
def test_redaction_keeps_what_people_read(text):
    assert redact(text) == text


def test_redaction_keeps_links_and_events_readable():
    assert redact(f"see {TOKEN_LINK} now") == f"see {TOKEN_LINK.removesuffix(TOKEN)}[redacted] now"
    quoted = TOKEN_LINK.replace("/", "=2F")
    assert redact(f"see {quoted}") == f"see {quoted.removesuffix(TOKEN)}[redacted]"
    event = _event().model_copy(
        update={"confirmation": Confirmation(url=TOKEN_LINK, expiresAt=datetime(2030, 1, 2, 3, 4, tzinfo=UTC))}
    )
    # What the dead-letter table keeps of an event: all of it but the token.
    redacted = json.loads(redact(event.to_bytes().decode()))
    expected = event.to_json_dict()
    expected["confirmation"]["url"] = TOKEN_LINK.removesuffix(TOKEN) + "[redacted]"
    assert redacted == expected


def test_redaction_takes_linear_time_on_long_unbroken_text():
    started = time.perf_counter()
    for text in ("a" * 100_000 + "=", "=a" * 50_000, "ab= " * 25_000, "http://" + "a" * 100_000):
        redact(text)
    assert time.perf_counter() - started < 1


def test_retry_delays_grow_then_run_out():
    delays = (5.0, 30.0, 300.0)
    assert [retry_delay(n, delays) for n in (1, 2, 3, 4)] == [5.0, 30.0, 300.0, None]
    with pytest.raises(ValueError):
        retry_delay(0, delays)


def test_deferrals_never_run_out_and_stay_within_a_claim():
    delays = (5.0, 30.0, 300.0, 1800.0)
    assert [deferral_delay(n, delays, longest=360) for n in range(5)] == [5.0, 30.0, 300.0, 300.0, 300.0]
    assert deferral_delay(0, (600.0,), longest=360) == 600.0


def test_retry_delays_setting_names_the_delay_queues(monkeypatch):
    monkeypatch.setenv("MAILER_RETRY_DELAYS", "0.2, 0.5,5")
    settings = Settings()
    assert settings.mailer_retry_delays == "0.2,0.5,5"
    topology = Topology.from_settings(settings)
    assert topology.mailer_retry_delays == (0.2, 0.5, 5.0)
    assert [topology.mailer_retry_queue(d) for d in topology.mailer_retry_delays] == [
        f"{settings.events_exchange}.mailer.retry.{label}s" for label in ("0.2", "0.5", "5")
    ]
    assert Topology("x").mailer_retry_queue(300) == "x.mailer.retry.300s"
    for bad in ("", "0", "-1", "five", "1,nan", "9999999"):
        monkeypatch.setenv("MAILER_RETRY_DELAYS", bad)
        with pytest.raises(ValidationError):
            Settings()


async def test_batcher_runs_concurrent_calls_together_and_alone_at_once():
    batches: list[list[int]] = []

    async def run(items: list[int]) -> list[int]:
        batches.append(items)
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    batcher = Batcher(run)
    assert await batcher(1) == 10
    assert await asyncio.gather(*(batcher(n) for n in range(2, 7))) == [20, 30, 40, 50, 60]
    assert batches == [[1], [2, 3, 4, 5, 6]]


async def test_batcher_fails_every_call_of_a_failed_batch_and_carries_on():
    calls = 0

    async def run(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionRefusedError("database away")
        return items

    batcher = Batcher(run)
    results = await asyncio.gather(batcher(1), batcher(2), return_exceptions=True)
    assert all(isinstance(result, ConnectionRefusedError) for result in results)
    assert await batcher(3) == 3
