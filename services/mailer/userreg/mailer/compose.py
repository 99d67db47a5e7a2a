"""What an event turns into: which emails, the variables their templates see, the MIME message.

Plain functions without I/O. Anything wrong with the event itself is a `PermanentFailure`: sending
it again would fail the same way.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from email.utils import formataddr, formatdate, parseaddr
from typing import Any

import pydantic
from email_validator import EmailNotValidError, validate_email

from userreg.mailer.policy import PermanentFailure
from userreg.shared.events import USER_CONFIRMATION_REQUESTED, USER_REGISTERED, Event, EventUser
from userreg.shared.templates import RenderedEmail

CONFIRMATION = "confirmation"
REGISTRATION = "registration"



class _ReusingHeaderRegistry(HeaderRegistry):
    """The standard registry builds a new class each time it parses a header, which made up a good
    part of composing an email; the classes depend on the header name only, so reuse them."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


# Serialised with CRLF line ends, as SMTP wants them.
MAIL_POLICY = policy.SMTP.clone(header_factory=_ReusingHeaderRegistry())
_FORBIDDEN_IN_HEADERS = ("\r", "\n", "\0")
MAX_DISPLAY_NAME = 200


def decode_event(body: bytes) -> Event:
    """The event in a message body; `PermanentFailure` (kind "malformed") if it is not a valid one."""
    try:
        event = Event.from_bytes(body)
    except pydantic.ValidationError as error:
        first = error.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise PermanentFailure("malformed", f"not a valid version-1 event ({error.error_count()} "
                                            f"problem(s); first: {where}: {first['msg']})") from None
    try:
        uuid.UUID(event.id)
    except ValueError:
        raise PermanentFailure("malformed", "the event id is not a UUID") from None
    return event


def emails_for(event: Event, *, welcome_email_enabled: bool) -> tuple[str, ...]:
    """The templates of the emails an event causes (SPEC §5), in the order they are sent."""
    if event.type == USER_REGISTERED:
        names = []
        if event.confirmation is not None:
            names.append(CONFIRMATION)
        if welcome_email_enabled:
            names.append(REGISTRATION)
        return tuple(names)
    if event.type == USER_CONFIRMATION_REQUESTED:
        if event.confirmation is None:
            raise PermanentFailure("malformed", "user.confirmation_requested without a confirmation link")
        return (CONFIRMATION,)
    return ()


def is_header_safe(value: str) -> bool:
    return not any(character in value for character in _FORBIDDEN_IN_HEADERS)


def header_value(value: str, what: str) -> str:
    """The value unchanged, or `PermanentFailure` if it could start a header of its own."""
    if not is_header_safe(value):
        raise PermanentFailure("header_injection", f"the {what} contains a line break or NUL; "
                                                   "it is never put into a mail header")
    return value


@dataclass(frozen=True)
class Recipient:
    address: str
    display_name: str | None


def recipient_of(user: EventUser) -> Recipient | None:
    """Where the user's emails go, or None when the user has no email address at all.

    The user's name is only decoration of the To header: a name that is unsafe there (line breaks,
    NUL) is left out rather than cleaned up, so the email still reaches the user."""
    if not user.email:
        return None
    header_value(user.email, "recipient address")
    try:
        address = validate_email(user.email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise PermanentFailure("invalid_recipient", f"invalid recipient address: {error}") from None
    name = (user.name or "").strip()
    if not name or not is_header_safe(name) or len(name) > MAX_DISPLAY_NAME:
        name = ""
    return Recipient(address=address, display_name=name or None)


@dataclass(frozen=True)
class Sender:
    """`MAIL_FROM` taken apart: the From header, the envelope address and the domain of Message-IDs."""

    header: str
    address: str
    domain: str
    # The header as the email package holds it, parsed once.
    from_header: Any = None


def parse_sender(mail_from: str) -> Sender:
    """Raises ValueError for a `MAIL_FROM` that is not a usable address (checked at start-up)."""
    if not is_header_safe(mail_from):
        raise ValueError("MAIL_FROM contains a line break or NUL")
    _, address = parseaddr(mail_from)
    if "@" not in address:
        raise ValueError(f"MAIL_FROM {mail_from!r} has no email address in it")
    header = mail_from.strip()
    parsed = _parsed("From", header)
    if parsed.defects or len(parsed.addresses) != 1:
        raise ValueError(f"MAIL_FROM {mail_from!r} is not one well-formed address")
    return Sender(header=header, address=address, domain=address.rsplit("@", 1)[1], from_header=parsed)


def message_id(event_id: str, template: str, domain: str) -> str:
    """The same for every attempt at the same email, so receivers can drop a duplicate."""
    return f"<{event_id}.{template}@{domain}>"


class UserProperties:
    """A user's properties as template variables: `user.<column>` or `user["<column>"]`.

    Deliberately not a dict: a dict's methods would shadow columns that share their names
    (`user.items`, `user.keys`), and here a column is found whatever it is called.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the class does not define; underscored names stay Python's own.
        if name.startswith("_") or name not in self._values:
            raise AttributeError(name)
        return self._values[name]

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def format_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def template_context(event: Event, *, app_name: str) -> dict[str, Any]:
    """The variables of SPEC §5 for one event."""
    user = event.user
    properties = {**user.properties, "objectId": user.object_id}
    for key, value in (("email", user.email), ("name", user.name)):
        if value is not None:
            properties.setdefault(key, value)
    confirmation = event.confirmation
    return {
        "app_name": app_name,
        "identity_name": user.identity_property,
        "identity_value": user.identity or "",
        "confirmation_url": confirmation.url if confirmation else None,
        "expires_at": format_time(confirmation.expires_at) if confirmation else None,
        "expires_at_iso": confirmation.expires_at.isoformat() if confirmation else None,
        "user": UserProperties(properties),
    }


def _parsed(name: str, value: str) -> Any:
    """A header parsed once; the email package stores such an object as it is, without parsing again."""
    return MAIL_POLICY.header_store_parse(name, value)[1]


# The parts' structure is the same in every email: parse its headers once, not per message.
# The boundary can be fixed because each part is base64, whose alphabet has no "_".
_BOUNDARY = "=_userreg_alternative_="
_MULTIPART = _parsed("Content-Type", f'multipart/alternative; boundary="{_BOUNDARY}"')
_MIME_VERSION = _parsed("MIME-Version", "1.0")
_BASE64 = _parsed("Content-Transfer-Encoding", "base64")
_TEXT = _parsed("Content-Type", 'text/plain; charset="utf-8"')
_HTML = _parsed("Content-Type", 'text/html; charset="utf-8"')
# RFC 3834: automatic mail; well-behaved auto-responders do not answer it.
_AUTO_SUBMITTED = _parsed("Auto-Submitted", "auto-generated")


def _part(content_type: Any, content: str) -> MIMEPart:
    part = MIMEPart(policy=MAIL_POLICY)
    part["Content-Type"] = content_type
    # base64 keeps the message 7-bit clean whatever the text, and costs little to produce.
    part["Content-Transfer-Encoding"] = _BASE64
    part.set_payload(base64.encodebytes(content.encode("utf-8")).decode("ascii"))
    return part


def _set(message: EmailMessage, name: str, value: Any) -> None:
    """Set a header whose value was already checked. A short ASCII value is stored as it is (no
    parsing and re-folding, which were most of the cost of a message); anything else, a non-ASCII
    name or subject for instance, goes through the email package's encoding."""
    fits = isinstance(value, str) and len(name) + len(value) + 2 <= MAIL_POLICY.max_line_length
    if fits and value.isascii():
        message.set_raw(name, value)
    else:
        message[name] = value


def build_message(rendered: RenderedEmail, *, event_id: str, template: str, sender: Sender,
                  to: Recipient) -> EmailMessage:
    """A multipart/alternative message (text, then HTML). Every header value is checked here."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender.from_header
    if to.display_name is None:
        _set(message, "To", to.address)
    elif to.display_name.isascii() and to.address.isascii():
        _set(message, "To", formataddr((to.display_name, to.address)))  # quotes the name where needed
    else:
        message["To"] = Address(display_name=to.display_name, addr_spec=to.address)
    _set(message, "Subject", header_value(rendered.subject, "subject"))
    _set(message, "Date", formatdate(usegmt=True))
    _set(message, "Message-ID", message_id(event_id, template, sender.domain))
    message["Auto-Submitted"] = _AUTO_SUBMITTED
    message["MIME-Version"] = _MIME_VERSION
    message["Content-Type"] = _MULTIPART
    message.set_payload([_part(_TEXT, rendered.text), _part(_HTML, rendered.html)])
    return message
