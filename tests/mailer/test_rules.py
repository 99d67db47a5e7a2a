"""The mailer's rules, without a broker, a database or a server."""

from __future__ import annotations

import asyncio
import email
from datetime import datetime, timezone
from email import policy

import aiosmtplib
import pytest
from pydantic import ValidationError

from userreg.mailer.compose import (
    UserProperties,
    build_message,
    decode_event,
    emails_for,
    header_value,
    message_id,
    parse_sender,
    recipient_of,
    template_context,
)
from userreg.mailer.deliveries import Batcher
from userreg.mailer.policy import (
    PermanentFailure,
    TransientFailure,
    classify_smtp_error,
    deferral_delay,
    redact,
    retry_delay,
)
from userreg.mailer.smtp import serialise
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
    fields = {"objectId": "U1", "identityProperty": "email", "identity": "ada@example.com",
              "email": "ada@example.com", "name": "Ada", **user}
    return Event(type=type, appId="APP", user=EventUser(**fields),
                 confirmation=Confirmation(url=LINK,
                                           expiresAt=datetime(2030, 1, 2, 3, 4, tzinfo=timezone.utc))
                 if confirmation else None)


@pytest.mark.parametrize(("type", "confirmation", "welcome", "expected"), [
    (USER_REGISTERED, True, False, ("confirmation",)),
    (USER_REGISTERED, False, True, ("registration",)),
    (USER_REGISTERED, True, True, ("confirmation", "registration")),
    (USER_REGISTERED, False, False, ()),
    (USER_CONFIRMATION_REQUESTED, True, True, ("confirmation",)),
    (USER_CONFIRMED, False, True, ()),
])
def test_which_emails_an_event_causes(type, confirmation, welcome, expected):
    assert emails_for(_event(type, confirmation=confirmation), welcome_email_enabled=welcome) == expected


def test_a_resend_without_a_link_is_malformed():
    with pytest.raises(PermanentFailure) as failure:
        emails_for(_event(USER_CONFIRMATION_REQUESTED, confirmation=False), welcome_email_enabled=False)
    assert failure.value.kind == "malformed"


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"type": "user.registered"}',
                                  _event().to_bytes().replace(b'"version":1', b'"version":2')],
                         ids=["empty", "not-json", "array", "no-fields", "version-2"])
def test_malformed_bodies_are_permanent_failures(body):
    with pytest.raises(PermanentFailure) as failure:
        decode_event(body)
    assert failure.value.kind == "malformed"


def test_an_event_id_must_be_a_uuid():
    with pytest.raises(PermanentFailure, match="UUID"):
        decode_event(_event().model_copy(update={"id": "1; DROP TABLE"}).to_bytes())
    event = _event()
    assert decode_event(event.to_bytes()) == event


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\r\nBcc: x@y", "a\0b"])
def test_header_values_with_line_breaks_or_nul_are_refused(value):
    with pytest.raises(PermanentFailure) as failure:
        header_value(value, "subject")
    assert failure.value.kind == "header_injection"
    assert header_value("fine: value", "subject") == "fine: value"


def test_recipient_keeps_a_safe_name_and_drops_an_unsafe_one():
    assert recipient_of(_event().user).display_name == "Ada"
    assert recipient_of(_event(name="Eve\r\nBcc: x@example.com").user).display_name is None
    assert recipient_of(_event(name="   ").user).display_name is None
    assert recipient_of(_event(email=None).user) is None
    assert recipient_of(_event(email="Ada@EXAMPLE.com").user).address == "Ada@example.com"


@pytest.mark.parametrize("address", ["not-an-address", "a@b@c", "ada@example.com\r\nBcc: x@example.com"])
def test_an_invalid_recipient_is_a_permanent_failure(address):
    with pytest.raises(PermanentFailure):
        recipient_of(_event(email=address).user)


def test_sender_from_settings():
    sender = parse_sender("Rocket Club <hello@rocket.example>")
    assert (sender.address, sender.domain) == ("hello@rocket.example", "rocket.example")
    for bad in ("nobody", "Club <x@y>\r\nBcc: z@w"):
        with pytest.raises(ValueError):
            parse_sender(bad)


def test_message_is_multipart_with_stable_message_id_and_checked_headers():
    event = _event(name="Zoë")
    recipient = recipient_of(event.user)
    rendered = RenderedEmail(subject="Bestätigen", text="plain ✓", html="<p>rich ✓</p>")
    sender = parse_sender("Club <no-reply@club.example>")
    message = build_message(rendered, event_id=event.id, template="confirmation", sender=sender, to=recipient)
    again = build_message(rendered, event_id=event.id, template="confirmation", sender=sender, to=recipient)
    assert message["Message-ID"] == again["Message-ID"] == f"<{event.id}.confirmation@club.example>"
    assert message_id(event.id, "registration", "club.example") != message["Message-ID"]
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert str(message["To"]) == "Zoë <ada@example.com>"
    wire = message.as_bytes()
    assert b"\r\nSubject: =?utf-8?q?Best=C3=A4tigen?=\r\n" in wire
    with pytest.raises(PermanentFailure):
        build_message(RenderedEmail(subject="a\0b", text="", html=""), event_id=event.id,
                      template="confirmation", sender=sender, to=recipient)


@pytest.mark.parametrize("name", ['Ada "Countess" Lovelace, Jr.', "Zoë Ünal",
                                  "Ada (admin) <root@example.com>", "back\\slash", "x" * 150])
def test_names_and_subjects_arrive_as_written(name):
    sender = parse_sender("Club <no-reply@club.example>")
    recipient = recipient_of(_event(name=name).user)
    message = build_message(RenderedEmail(subject=f"Hello {name}", text="t", html="h"), event_id="E",
                            template="confirmation", sender=sender, to=recipient)
    data, utf8 = serialise(message, sender.address, recipient.address)
    received = email.message_from_bytes(data, policy=policy.default)
    assert not utf8 and data.isascii()
    assert [(a.display_name, a.addr_spec) for a in received["To"].addresses] == [(name, "ada@example.com")]
    assert str(received["Subject"]) == f"Hello {name}"
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_template_variables():
    event = _event(properties={"email": "ada@example.com", "items": "a column", "score": 3})
    context = template_context(event, app_name="Club")
    assert context["app_name"] == "Club"
    assert (context["identity_name"], context["identity_value"]) == ("email", "ada@example.com")
    assert context["confirmation_url"] == LINK
    assert context["expires_at"] == "2030-01-02 03:04 UTC"
    user = context["user"]
    assert (user.items, user.score, user["score"], user.objectId, user.name) == (
        "a column", 3, 3, "U1", "Ada")
    with pytest.raises(AttributeError):
        user.missing  # noqa: B018
    assert template_context(_event(confirmation=False), app_name="Club")["confirmation_url"] is None


def test_user_properties_in_the_sandbox():
    context = template_context(_event(properties={"keys": "k", "__html__": "x"}), app_name="Club")
    rendered = TemplateStore().render_email(TemplateSource(
        subject="{{ user.keys }} {{ user.nope }}", text="{{ user._values }}",
        html="{{ user['__html__'] }} {% for column in user %}{{ column }} {% endfor %}"), context)
    assert rendered.subject == "k"
    assert rendered.text == ""  # underscored names stay out of templates' reach
    assert rendered.html.split() == ["x", "keys", "__html__", "objectId", "email", "name"]
    assert len(UserProperties({"a": 1})) == 1


@pytest.mark.parametrize(("error", "transient", "kind"), [
    (aiosmtplib.SMTPConnectError("refused"), True, "connection"),
    (ConnectionRefusedError(), True, "connection"),
    (aiosmtplib.SMTPServerDisconnected("gone"), True, "connection"),
    (aiosmtplib.SMTPReadTimeoutError("slow"), True, "timeout"),
    (asyncio.TimeoutError(), True, "timeout"),
    (aiosmtplib.SMTPDataError(421, "busy"), True, "smtp_4xx"),
    (aiosmtplib.SMTPSenderRefused(451, "later", "x@y"), True, "smtp_4xx"),
    (aiosmtplib.SMTPDataError(554, "spam"), False, "smtp_5xx"),
    (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")]),
     False, "smtp_5xx"),
    (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(452, "full", "x@y")]),
     True, "smtp_4xx"),
    (aiosmtplib.SMTPNotSupported("SMTPUTF8"), False, "smtp_unsupported"),
])
def test_smtp_errors_are_transient_or_permanent(error, transient, kind):
    failure = classify_smtp_error(error)
    assert isinstance(failure, TransientFailure if transient else PermanentFailure)
    assert (failure.transient, failure.kind) == (transient, kind)


def test_failure_reasons_never_carry_a_link_token():
    failure = classify_smtp_error(aiosmtplib.SMTPDataError(554, f"rejected content: {LINK}\r\nmore"))
    assert "A" * 43 not in failure.reason and "/confirm/[redacted]" in failure.reason
    assert "\n" not in failure.reason
    assert redact("no link here") == "no link here"


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
        f"{settings.events_exchange}.mailer.retry.{label}s" for label in ("0.2", "0.5", "5")]
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
