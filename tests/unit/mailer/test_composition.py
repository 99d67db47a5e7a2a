"""The mailer composed with fakes: `create_app` takes a sender instead of the SMTP pool, and the
service layer composes an event's emails and hands them to the sender it was given. No broker, no
database, no SMTP server: the app's lookups and the delivery log are fakes of their own here, the
sender is `RecordingSender`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from userreg.mailer.app import create_app
from userreg.mailer.compose import parse_mail_from
from userreg.mailer.repository import AppInfo
from userreg.mailer.rules.leases import Claim
from userreg.mailer.rules.policy import PermanentFailure, TransientFailure
from userreg.mailer.sending import RecordingSender
from userreg.mailer.service import Deliverer, Outcome
from userreg.shared.events import USER_CONFIRMATION_REQUESTED, USER_REGISTERED, Confirmation, Event, EventUser
from userreg.shared.settings import Settings
from userreg.shared.templates import Email, TemplateStore

LINK = "https://confirm.example/APP/confirm/" + "A" * 43
MAIL_FROM = parse_mail_from("Club <no-reply@club.example>")


class FakeApps:
    """One app, with the shipped default templates (an `AppLookup` without a database)."""

    def __init__(self, templates: TemplateStore, *, welcome_email_enabled: bool) -> None:
        self.app = AppInfo(app_id="APP", name="Rocket Club", welcome_email_enabled=welcome_email_enabled)
        self._templates = templates
        self.forgotten: list[str] = []

    async def sources(self, app_id, names, locale):
        return self.app, {name: self._templates.default_source(Email(name)) for name in names(self.app)}

    def forget(self, app_id: str) -> None:
        self.forgotten.append(app_id)


class FakeDeliveryLog:
    """Claims whatever was not sent yet and keeps what was recorded (a `DeliveryLog` without a database)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.released: list[tuple[str, tuple[str, ...], str]] = []

    async def claim(self, event_id: str, app_id: str, templates: tuple[str, ...]) -> Claim:
        return Claim(
            claimed=tuple(t for t in templates if (event_id, t) not in self.sent),
            already_sent=tuple(t for t in templates if (event_id, t) in self.sent),
            busy=(),
        )

    def ensure_claim(self, event_id: str, template: str) -> None:
        pass

    async def mark_sent(self, event_id: str, template: str) -> None:
        self.sent.append((event_id, template))

    async def release(self, event_id: str, templates: tuple[str, ...], reason: str) -> None:
        self.released.append((event_id, templates, reason))

    def let_lapse(self, event_id: str, templates: tuple[str, ...]) -> None:
        pass


def _event(type: str = USER_REGISTERED, *, email: str | None = "ada@example.com") -> Event:
    return Event(
        type=type,
        appId="APP",
        user=EventUser(objectId="U1", identityProperty="email", identity=email, email=email, name="Ada", properties={}),
        confirmation=Confirmation(url=LINK, expiresAt=datetime(2030, 1, 2, 3, 4, tzinfo=UTC)),
    )


def _deliverer(sender: RecordingSender, *, welcome: bool = True) -> tuple[Deliverer, FakeDeliveryLog]:
    templates = TemplateStore.from_settings(Settings())
    log = FakeDeliveryLog()
    deliverer = Deliverer(
        apps=FakeApps(templates, welcome_email_enabled=welcome),
        templates=templates,
        deliveries=log,
        sender=sender,
        mail_from=MAIL_FROM,
    )
    return deliverer, log


def test_create_app_takes_a_sender_and_connects_to_nothing_until_it_starts():
    app = create_app(Settings(mail_from="Club <no-reply@club.example>"), sender=RecordingSender())
    assert {resource.canonical for resource in app.router.resources()} == {"/health", "/ready", "/metrics"}
    # Engine, service layer (with the sender), consumer, retention: built when the app starts.
    assert len(app.cleanup_ctx) == 4
    with pytest.raises(ValueError, match="MAIL_FROM"):
        create_app(Settings(mail_from="nobody"), sender=RecordingSender())


async def test_an_events_emails_are_composed_and_handed_to_the_sender():
    sender = RecordingSender()
    deliverer, log = _deliverer(sender)
    event = _event()

    outcome = await deliverer.deliver(event)

    assert outcome == Outcome(sent=("confirmation", "registration"))
    assert log.sent == [(event.id, "confirmation"), (event.id, "registration")]
    assert [(email.mail_from, email.rcpt_to) for email in sender.sent] == [
        ("no-reply@club.example", "ada@example.com")
    ] * 2
    confirmation, welcome = (email.message for email in sender.sent)
    assert confirmation["Message-ID"] == f"<{event.id}.confirmation@club.example>"
    assert welcome["Message-ID"] == f"<{event.id}.registration@club.example>"
    assert (str(confirmation["From"]), str(confirmation["To"])) == (
        "Club <no-reply@club.example>",
        "Ada <ada@example.com>",
    )
    assert "Rocket Club" in str(confirmation["Subject"])
    assert LINK in confirmation.get_body(("plain",)).get_content()
    assert [part.get_content_type() for part in confirmation.iter_parts()] == ["text/plain", "text/html"]

    # Its redelivery finds both sent: nothing is handed over twice.
    assert await deliverer.deliver(event) == Outcome(already_sent=("confirmation", "registration"))
    assert len(sender.sent) == 2


async def test_a_resend_causes_the_confirmation_email_only():
    sender = RecordingSender()
    deliverer, _ = _deliverer(sender)
    event = _event(USER_CONFIRMATION_REQUESTED)
    assert (await deliverer.deliver(event)).sent == ("confirmation",)
    assert [email.message["Message-ID"] for email in sender.sent] == [f"<{event.id}.confirmation@club.example>"]


async def test_a_user_without_an_email_address_gets_nothing():
    sender = RecordingSender()
    deliverer, log = _deliverer(sender)
    assert await deliverer.deliver(_event(email=None)) == Outcome()
    assert sender.sent == [] and log.sent == []


async def test_a_transient_failure_of_the_sender_releases_the_claims_and_is_raised():
    sender = RecordingSender()
    deliverer, log = _deliverer(sender)
    event = _event()
    sender.fail_next(TransientFailure("smtp_4xx", "server answered 451 4.3.0 try later"))

    with pytest.raises(TransientFailure) as failed:
        await deliverer.deliver(event)

    assert failed.value.kind == "smtp_4xx"
    assert log.released == [(event.id, ("confirmation", "registration"), "server answered 451 4.3.0 try later")]
    assert sender.sent == [] and log.sent == []
    # The next delivery of the event sends both.
    assert (await deliverer.deliver(event)).sent == ("confirmation", "registration")


async def test_a_permanent_failure_on_the_second_email_keeps_the_first_sent():
    sender = RecordingSender()
    deliverer, log = _deliverer(sender)
    event = _event()
    sender.fail_next(None, PermanentFailure("smtp_5xx", "server answered 550 no"))

    with pytest.raises(PermanentFailure):
        await deliverer.deliver(event)

    assert [email.message["Message-ID"] for email in sender.sent] == [f"<{event.id}.confirmation@club.example>"]
    assert log.sent == [(event.id, "confirmation")]
    assert log.released == [(event.id, ("registration",), "server answered 550 no")]


async def test_a_closed_sender_lends_no_connection():
    sender = RecordingSender()
    deliverer, log = _deliverer(sender)
    await sender.close()
    with pytest.raises(TransientFailure) as failed:
        await deliverer.deliver(_event())
    assert failed.value.kind == "shutdown" and log.sent == []
