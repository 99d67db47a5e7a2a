"""Helpers of the mailer tests: their own settings and topology, the mailer in-process, events."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import quopri
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from typing import Any

import aio_pika
import pytest
from aiohttp.test_utils import TestServer
from aiosmtpd.smtp import SMTP, Envelope
from prometheus_client import REGISTRY
from sqlalchemy import select

from tests.support.polling import eventually
from userreg.mailer.app import create_app
from userreg.mailer.keys import CONSUMER
from userreg.mailer.sending import Sender
from userreg.shared.db import App
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.events import (
    USER_PASSWORD_CHANGED,
    USER_PASSWORD_RESET_REQUESTED,
    USER_REGISTERED,
    Confirmation,
    Event,
    EventUser,
)
from userreg.shared.messaging import Topology, delete_topology
from userreg.shared.settings import Settings
from userreg.shared.tokens import new_token, password_reset_url

RETRY_DELAYS = "0.2,0.5"


def settings_for(settings: Settings, *, smtp_port: int, retry_delays: str = RETRY_DELAYS, **changes: Any) -> Settings:
    """The session's settings with a topology of the test's own and the test's SMTP server."""
    return settings.model_copy(
        update={
            "events_exchange": f"{settings.events_exchange}.{uuid.uuid4().hex[:8]}",
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_timeout": 5.0,
            "mailer_retry_delays": retry_delays,
            "mail_from": "Test App <no-reply@mail.test>",
            **changes,
        }
    )


async def remove_topology(settings: Settings) -> None:
    await delete_topology(settings.amqp_dsn, Topology.from_settings(settings))


@contextlib.asynccontextmanager
async def running_mailer(settings: Settings, *, sender: Sender | None = None) -> AsyncIterator[TestServer]:
    """The mailer's own app (consumer + /health, /ready, /metrics) on a free port, consuming;
    sending through `sender` when given (else through SMTP, as configured)."""
    server = TestServer(create_app(settings, sender=sender))
    await server.start_server()
    try:
        await eventually(lambda: server.app[CONSUMER].ready, timeout=20, what="the mailer to consume")
        yield server
    finally:
        await server.close()


class Publisher:
    """Publishes events the way the outbox relay does (persistent, confirmed, id = event id)."""

    def __init__(self, channel: aio_pika.abc.AbstractChannel, exchange: str) -> None:
        self._channel = channel
        self._exchange_name = exchange

    async def __call__(self, event: Event, *, body: bytes | None = None) -> None:
        exchange = await self._channel.declare_exchange(self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        await exchange.publish(
            aio_pika.Message(
                body=event.to_bytes() if body is None else body,
                message_id=event.id,
                type=event.type,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers={"x-app-id": event.app_id, "x-event-version": 1},
            ),
            routing_key=event.type,
            mandatory=True,
            timeout=10,
        )


def make_event(
    app: App,
    *,
    type: str = USER_REGISTERED,
    email: str | None = None,
    name: str | None = "Ada",
    locale: str | None = None,
    confirmation: bool = True,
    properties: dict | None = None,
) -> Event:
    email = email if email is not None else f"user-{uuid.uuid4().hex[:10]}@example.com"
    props = {"email": email, "name": name, "blUserLocale": locale, **(properties or {})}
    token = (uuid.uuid4().hex + uuid.uuid4().hex)[:43]
    return Event(
        type=type,
        appId=app.app_id,
        user=EventUser(
            objectId=str(uuid.uuid4()).upper(),
            identityProperty="email",
            identity=email,
            email=email,
            name=name,
            locale=locale,
            properties={key: value for key, value in props.items() if value is not None},
        ),
        confirmation=Confirmation(
            url=f"http://confirm.test.invalid/{app.app_id}/confirm/{token}",
            expiresAt=datetime.now(UTC) + timedelta(days=1),
        )
        if confirmation
        else None,
    )


def make_reset_event(app: App, *, token: str | None = None, expires_at: datetime | None = None, **user: Any) -> Event:
    """A `user.password_reset_requested` event as registration publishes it: the reset link in
    `passwordReset` (with `token`, a fresh one unless given), no confirmation link."""
    link = Confirmation(
        url=password_reset_url("http://confirm.test.invalid", app.app_id, token or new_token()),
        expiresAt=expires_at or datetime.now(UTC) + timedelta(hours=1),
    )
    event = make_event(app, type=USER_PASSWORD_RESET_REQUESTED, confirmation=False, **user)
    return event.model_copy(update={"password_reset": link})


def make_changed_event(app: App, **user: Any) -> Event:
    """A `user.password_changed` event as confirmation-web publishes it (no link)."""
    return make_event(app, type=USER_PASSWORD_CHANGED, confirmation=False, **user)


def reset_token_of(event: Event) -> str:
    assert event.password_reset is not None
    return event.password_reset.url.rsplit("/", 1)[1]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counters:
    """How much counters grew since `track()` (metrics are per process, tests in one process run
    one after the other)."""

    def __init__(self) -> None:
        self._start: dict[tuple, float] = {}

    def track(self, name: str, **labels: str) -> Counters:
        self._start[(name, tuple(sorted(labels.items())))] = metric(name, **labels)
        return self

    def __call__(self, name: str, **labels: str) -> float:
        return metric(name, **labels) - self._start[(name, tuple(sorted(labels.items())))]


async def delivery_rows(sessions, event_id: str) -> list[MailDelivery]:
    async with sessions() as session:
        rows = await session.scalars(
            select(MailDelivery).where(MailDelivery.event_id == event_id).order_by(MailDelivery.template)
        )
        return list(rows.all())


async def sent_rows(sessions, event_id: str, count: int = 1) -> list[MailDelivery]:
    """The event's delivery records once `count` of them say SENT (the email is accepted a moment
    before that is recorded)."""

    async def all_sent() -> list[MailDelivery] | None:
        rows = await delivery_rows(sessions, event_id)
        return rows if len(rows) == count and all(row.status is DeliveryStatus.SENT for row in rows) else None

    return await eventually(all_sent, what=f"{count} sent deliveries of event {event_id}")


async def dead_letter_row(sessions, event_id: str) -> DeadLetter | None:
    async with sessions() as session:
        return await session.get(DeadLetter, event_id, populate_existing=True)


# --- mail headers (the README's Security section) ---------------------------------------------------------------------

# What may never reach a header, written out here as the contract says it (the mailer computes its
# own): every line end of `str.splitlines()` and every control character (C0, DEL, C1).
LINE_BREAKS = "\n\x0b\x0c\r\x1c\x1d\x1e\x85\u2028\u2029"
CONTROLS = "".join(map(chr, [*range(0x20), 0x7F, *range(0x80, 0xA0)]))
UNSAFE = sorted(set(LINE_BREAKS + CONTROLS))
# The attack of the issue: a vertical tab ends the To header, Reply-To follows, two make a body.
ISSUE_NAME = "a\u000bReply-To: x@evil.example\u000b\u000bLocked! see evil.example"
HEADER_NAMES = {"From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"}


def character_id(character: str) -> str:
    """A stable test id for a character (xdist workers must collect the same ids)."""
    return f"U+{ord(character):04X}"


def unsafe_characters() -> list:
    return [pytest.param(character, id=character_id(character)) for character in UNSAFE]


def parse_raw(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def assert_clean_headers(data: bytes) -> EmailMessage:
    """The raw message has exactly the mailer's headers, each once, on printable ASCII lines (a
    folded header goes on on lines starting with a blank); returns it parsed."""
    head, separator, _ = data.partition(b"\r\n\r\n")
    assert separator, "no end of the header block"
    for line in head.split(b"\r\n"):
        assert line and all(0x20 <= byte < 0x7F or byte == 0x09 for byte in line), line
        if line[:1] not in (b" ", b"\t"):
            assert line.split(b":", 1)[0].decode() in HEADER_NAMES, line
    received = parse_raw(data)
    names = [name for name, _ in received.items()]
    assert sorted(names) == sorted(HEADER_NAMES), names
    assert received.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in received.iter_parts()] == ["text/plain", "text/html"]
    assert not received.defects
    return received


def subject_of(received: EmailMessage) -> str:
    """The Subject as a reader sees it, asserting it is one line. (Python's folder moves a value
    that fits on a line of its own, 70 to 77 characters, to the next line whole; parsing it again
    keeps the blank it folded at, which mail programs drop.)"""
    subject = str(received["Subject"])
    assert not set(subject) & set(UNSAFE), repr(subject)
    return subject.lstrip(" ")


def bare_address(received: EmailMessage) -> str:
    """The To header's one address, asserting it carries no display name."""
    [address] = received["To"].addresses
    assert address.display_name == ""
    assert str(received["To"]) == address.addr_spec
    return address.addr_spec


# --- SMTP replies that quote the message ----------------------------------------------------------


class QuotingServer:
    """An SMTP server that refuses every message with `code`, quoting it as content filters do:
    the text part as it came (base64 lines) and a quoted-printable copy of it, one reply line each.
    `replies` keeps the text of every reply as the client reads it (lines without their codes)."""

    def __init__(self, code: int = 554) -> None:
        self.code = code
        self.port = 0
        self.replies: list[str] = []
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> QuotingServer:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="quoting", enable_SMTPUTF8=True, loop=loop), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def handle_DATA(self, server: SMTP, session: object, envelope: Envelope) -> str:
        received = parse_raw(bytes(envelope.original_content or b""))
        text = received.get_body(preferencelist=("plain",))
        quoted_printable = quopri.encodestring(text.get_content().encode("utf-8")).decode("ascii")
        lines = [
            "5.7.1 Message refused, it contains:",
            *text.get_payload().splitlines(),
            "in other words:",
            *quoted_printable.splitlines(),
            "Goodbye",
        ]
        self.replies.append("\n".join(lines))
        return "\r\n".join(f"{self.code}-{line}" for line in lines[:-1]) + f"\r\n{self.code} {lines[-1]}"


def token_forms(text: str, token: str) -> list[str]:
    """The forms in which `token` can be read in `text`: as written, as quoted-printable (soft line
    breaks removed, also ones already joined into a space, then decoded), or as base64 (every run
    of base64 characters, the runs that follow each other across blanks joined as a body's lines
    are, decoded at each of the four alignments)."""
    found = []
    if token in text:
        found.append("plain")
    unbroken = re.sub(r"=[ \t]*(?:\r\n|\r|\n| )", "", text)
    if token.encode() in quopri.decodestring(unbroken.encode("utf-8", "replace")):
        found.append("quoted-printable")
    for block in re.findall(r"[A-Za-z0-9+/=]+(?:\s+[A-Za-z0-9+/=]+)*", text):
        joined = re.sub(r"[\s=]", "", block)
        for skip in range(4):
            usable = joined[skip:]
            usable = usable[: len(usable) // 4 * 4]
            if token.encode() in base64.b64decode(usable):
                found.append("base64")
    return found
