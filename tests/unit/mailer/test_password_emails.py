"""The password emails' rules, without a broker, a database or a server: which emails each event
causes, the variables of the reset and changed emails, the shipped defaults, and the reset link's
token kept out of everything the mailer keeps and logs."""

from __future__ import annotations

import base64
import json
import quopri
from datetime import UTC, datetime

import aio_pika
import aiosmtplib
import pytest

from tests.integration.mailer.helpers import ISSUE_NAME, assert_clean_headers, subject_of, token_forms
from userreg.mailer.compose import build_message, parse_mail_from, recipient_of
from userreg.mailer.envelope import dead_letter_record
from userreg.mailer.rules.emails import emails_for
from userreg.mailer.rules.policy import PermanentFailure, classify_smtp_error
from userreg.mailer.rules.redaction import redact
from userreg.mailer.smtp import serialise
from userreg.mailer.variables import template_context
from userreg.shared.events import (
    USER_CONFIRMATION_REQUESTED,
    USER_CONFIRMED,
    USER_PASSWORD_CHANGED,
    USER_PASSWORD_RESET_REQUESTED,
    USER_REGISTERED,
    Confirmation,
    Event,
    EventUser,
)
from userreg.shared.settings import Settings
from userreg.shared.templates import Email, TemplateSource, TemplateStore
from userreg.shared.tokens import confirmation_url, password_reset_url

APP_ID = "0A1B2C3D-1111-2222-3333-444455556666"
# A token as tokens are made: 43 URL-safe base64 characters.
TOKEN = "q7Hk-2mZ_rT9vYwX4bN8cL1pQ6sD0fG5jK3hV-_aB2e"
RESET_LINK = password_reset_url("https://confirm.example", APP_ID, TOKEN)
CONFIRM_LINK = confirmation_url("https://confirm.example", APP_ID, "C" * 43)
EXPIRES = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
OCCURRED = datetime(2030, 1, 2, 2, 4, 30, tzinfo=UTC)
MAIL_FROM = parse_mail_from("Club <no-reply@club.example>")


def _event(type: str, *, confirmation: bool = False, reset: bool = False, **user: object) -> Event:
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
        appId=APP_ID,
        occurredAt=OCCURRED,
        user=EventUser(**fields),
        confirmation=Confirmation(url=CONFIRM_LINK, expiresAt=EXPIRES) if confirmation else None,
        passwordReset=Confirmation(url=RESET_LINK, expiresAt=EXPIRES) if reset else None,
    )


# -- which emails ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type", "links", "welcome", "expected"),
    [
        (USER_REGISTERED, {"confirmation": True}, False, ("confirmation",)),
        (USER_REGISTERED, {"confirmation": True}, True, ("confirmation", "registration")),
        (USER_REGISTERED, {}, True, ("registration",)),
        (USER_REGISTERED, {}, False, ()),
        (USER_CONFIRMATION_REQUESTED, {"confirmation": True}, True, ("confirmation",)),
        (USER_CONFIRMED, {}, True, ()),
        (USER_CONFIRMED, {"confirmation": True}, True, ()),
        (USER_PASSWORD_RESET_REQUESTED, {"reset": True}, False, ("password-reset",)),
        # The welcome email belongs to registering, never to a reset.
        (USER_PASSWORD_RESET_REQUESTED, {"reset": True}, True, ("password-reset",)),
        (USER_PASSWORD_CHANGED, {}, False, ("password-changed",)),
        (USER_PASSWORD_CHANGED, {}, True, ("password-changed",)),
    ],
    ids=[
        "registered",
        "registered+welcome",
        "welcome-only",
        "registered-nothing",
        "resend",
        "confirmed",
        "confirmed-with-link",
        "reset",
        "reset-welcome-on",
        "changed",
        "changed-welcome-on",
    ],
)
def test_which_emails_each_of_the_five_events_causes(type, links, welcome, expected):
    assert emails_for(_event(type, **links), welcome_email_enabled=welcome) == expected


def test_the_names_are_the_templates_plain_names():
    assert emails_for(_event(USER_PASSWORD_RESET_REQUESTED, reset=True), welcome_email_enabled=False) == (
        Email.PASSWORD_RESET.value,
    )
    [name] = emails_for(_event(USER_PASSWORD_CHANGED), welcome_email_enabled=False)
    assert type(name) is str and name == Email.PASSWORD_CHANGED.value


def test_a_reset_request_without_its_link_is_malformed():
    # A confirmation link is not a reset link: the reset email must carry the reset link or nothing.
    for event in (_event(USER_PASSWORD_RESET_REQUESTED), _event(USER_PASSWORD_RESET_REQUESTED, confirmation=True)):
        with pytest.raises(PermanentFailure) as failure:
            emails_for(event, welcome_email_enabled=False)
        assert failure.value.kind == "malformed" and "passwordReset" in failure.value.reason


# -- the variables ---------------------------------------------------------------------------------


def test_the_reset_emails_variables():
    context = template_context(
        _event(USER_PASSWORD_RESET_REQUESTED, reset=True, properties={"email": "ada@example.com", "score": 3}),
        app_name="Club",
    )
    assert context["reset_url"] == RESET_LINK
    assert context["confirmation_url"] is None
    assert (context["expires_at"], context["expires_at_iso"]) == ("2030-01-02 03:04 UTC", EXPIRES.isoformat())
    assert (context["app_name"], context["identity_name"], context["identity_value"]) == (
        "Club",
        "email",
        "ada@example.com",
    )
    assert (context["user"].score, context["user"].objectId, context["user"].name) == (3, "U1", "Ada")
    assert context["occurred_at"] == "2030-01-02 02:04 UTC"


def test_the_changed_notices_variables_and_no_link_anywhere_else():
    context = template_context(_event(USER_PASSWORD_CHANGED), app_name="Club")
    assert context["occurred_at"] == "2030-01-02 02:04 UTC"
    assert (context["reset_url"], context["confirmation_url"], context["expires_at"], context["expires_at_iso"]) == (
        None,
        None,
        None,
        None,
    )
    # The confirmation emails see no reset link, and their expiry is their own link's.
    confirmation = template_context(_event(USER_REGISTERED, confirmation=True), app_name="Club")
    assert (confirmation["reset_url"], confirmation["confirmation_url"], confirmation["expires_at"]) == (
        None,
        CONFIRM_LINK,
        "2030-01-02 03:04 UTC",
    )


# -- the shipped defaults --------------------------------------------------------------------------

STORE = TemplateStore.from_settings(Settings())


def _rendered(name: str, locale: str, event: Event):
    """The shipped email as a user whose `blUserLocale` is `locale` gets it."""
    event = event.model_copy(update={"user": event.user.model_copy(update={"locale": locale})})
    return STORE.render_email(STORE.default_source(Email(name)), template_context(event, app_name="Club & Co"))


@pytest.mark.parametrize(
    ("locale", "subject", "words"),
    [
        ("en", "Reset your password for Club & Co", ("Hi Ada,", "The link works once, until 2030-01-02 03:04 UTC")),
        ("de", "Passwort für Club & Co zurücksetzen", ("Hallo Ada,", "gültig bis 2030-01-02 03:04 UTC")),
        (
            "fr",
            "Réinitialisez votre mot de passe pour Club & Co",
            ("Bonjour Ada,", "ne fonctionne qu\u2019une fois, jusqu\u2019au 2030-01-02 03:04 UTC"),
        ),
    ],
)
def test_the_shipped_reset_email(locale, subject, words):
    rendered = _rendered("password-reset", locale, _event(USER_PASSWORD_RESET_REQUESTED, reset=True))
    assert rendered.subject == subject
    assert RESET_LINK in rendered.text and all(word in rendered.text for word in words)
    assert "ada@example.com" in rendered.text and "{{" not in rendered.text
    assert f'href="{RESET_LINK}"' in rendered.html and f'<html lang="{locale}">' in rendered.html
    assert "Club &amp; Co" in rendered.html and words[1] in rendered.html
    assert CONFIRM_LINK not in rendered.text + rendered.html


@pytest.mark.parametrize(
    ("locale", "subject", "words"),
    [
        (
            "en",
            "Your password for Club & Co was changed",
            ("was changed on 2030-01-02 02:04 UTC", "If this was not you", "signed out everywhere"),
        ),
        (
            "de",
            "Ihr Passwort für Club & Co wurde geändert",
            ("wurde am 2030-01-02 02:04 UTC geändert", "Wenn Sie das nicht waren", "überall abgemeldet"),
        ),
        (
            "fr",
            "Votre mot de passe pour Club & Co a été modifié",
            ("a été modifié le 2030-01-02 02:04 UTC", "Si ce n\u2019était pas vous", "déconnecté partout"),
        ),
    ],
)
def test_the_shipped_changed_notice(locale, subject, words):
    rendered = _rendered("password-changed", locale, _event(USER_PASSWORD_CHANGED, name=None))
    assert rendered.subject == subject
    assert all(word in rendered.text for word in words) and "ada@example.com" in rendered.text
    assert rendered.text.startswith({"en": "Hello,", "de": "Hallo,", "fr": "Bonjour,"}[locale])
    assert "http" not in rendered.text  # a notice, no link
    assert f'<html lang="{locale}">' in rendered.html and "2030-01-02 02:04 UTC" in rendered.html
    assert words[1] in rendered.html


def test_a_users_name_is_escaped_in_the_html_of_both():
    name = '<script>alert("x")</script>'
    for template, event in (
        ("password-reset", _event(USER_PASSWORD_RESET_REQUESTED, reset=True, name=name)),
        ("password-changed", _event(USER_PASSWORD_CHANGED, name=name)),
    ):
        rendered = _rendered(template, "en", event)
        assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
        assert f"Hi {name}," in rendered.text


@pytest.mark.parametrize("template", ["password-reset", "password-changed"])
def test_a_subject_with_user_data_goes_through_the_header_checks(template):
    event = _event(
        USER_PASSWORD_RESET_REQUESTED if template == "password-reset" else USER_PASSWORD_CHANGED,
        reset=template == "password-reset",
        name=ISSUE_NAME,
    )
    source = STORE.default_source(Email(template))
    rendered = STORE.render_email(
        TemplateSource(subject="{{ user.name }}: {{ app_name }}", text=source.text, html=source.html),
        template_context(event, app_name="Club"),
    )
    recipient = recipient_of(event.user)
    message = build_message(
        rendered, event_id="2b0e1c9a-3c6f-4e36-9d0b-6a1f5f1c2e3d", template=template, mail_from=MAIL_FROM, to=recipient
    )
    data, _ = serialise(message, MAIL_FROM.address, recipient.address)
    received = assert_clean_headers(data)
    assert subject_of(received) == "a Reply-To: x@evil.example Locked! see evil.example: Club"
    # (A Message-ID longer than a line is folded: the reader drops the blank.)
    assert received["Message-ID"].strip() == f"<2b0e1c9a-3c6f-4e36-9d0b-6a1f5f1c2e3d.{template}@club.example>"
    assert str(received["To"]) == "ada@example.com"  # the unsafe name is left out


# -- the reset token out of what the mailer keeps --------------------------------------------------


def test_a_reset_links_token_is_redacted_as_written_and_encoded():
    prefix = RESET_LINK.removesuffix(TOKEN)
    assert redact(f"see {RESET_LINK} now") == f"see {prefix}[redacted] now"
    for quoted in (RESET_LINK.replace("/", "=2F"), RESET_LINK.replace("/", "%2F"), RESET_LINK.upper()):
        assert TOKEN.upper() not in redact(f"see {quoted}").upper()
    assert redact(f"path /{APP_ID}/reset-password/{TOKEN}") == f"path /{APP_ID}/reset-password/[redacted]"
    # Neighbouring words and paths stay.
    for text in ("reset-password failed for app " + APP_ID, "/reset-password/ is the page", "server answered 550"):
        assert redact(text) == text


def _quoting_reply(prefix: str, separator: str) -> str:
    """An SMTP reply quoting a reset email's body: its base64 lines, then a quoted-printable copy."""
    body = f"{prefix}Hi Ada,\n\nto choose a new password for the Rocket Club, open:\n{RESET_LINK}\n\nBye"
    quoted = [
        *base64.encodebytes(body.encode()).decode().splitlines(),
        *quopri.encodestring(body.encode()).decode().splitlines(),
    ]
    return separator.join(["5.7.1 Message refused, it contains:", *quoted, "Goodbye"])


@pytest.mark.parametrize("prefix", ["", "x", "xy", "\u00e4"], ids=["offset-0", "offset-1", "offset-2", "utf-8"])
@pytest.mark.parametrize("separator", ["\n", " "], ids=["lines", "joined"])
def test_a_reply_quoting_a_reset_email_keeps_no_form_of_its_token(prefix, separator):
    reply = _quoting_reply(prefix, separator)
    assert {"base64", "quoted-printable"} <= set(token_forms(reply, TOKEN))  # the reply does carry it
    failure = classify_smtp_error(aiosmtplib.SMTPDataError(554, reply))
    assert token_forms(failure.reason, TOKEN) == []
    assert failure.reason.startswith("server answered 554 5.7.1 Message refused, it contains: ")


def test_the_dead_letter_record_of_a_reset_event_keeps_everything_but_the_token():
    event = _event(USER_PASSWORD_RESET_REQUESTED, reset=True)
    record = dead_letter_record(
        aio_pika.Message(body=event.to_bytes(), message_id=event.id, type=event.type),
        reason="recipient refused: 550",
        attempts=1,
    )
    expected = event.to_json_dict()
    expected["passwordReset"]["url"] = RESET_LINK.removesuffix(TOKEN) + "[redacted]"
    assert record.payload == expected
    assert (record.event_type, record.app_id) == (USER_PASSWORD_RESET_REQUESTED, APP_ID)
    assert TOKEN not in json.dumps(record.payload)
