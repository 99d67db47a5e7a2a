"""What an event turns into: which emails, the variables their templates see, the MIME message.

Plain functions without I/O. Anything wrong with the event itself is a `PermanentFailure`: sending
it again would fail the same way.
"""

from __future__ import annotations

import base64
import re
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import errors, policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage, MIMEPart
from email.policy import Policy
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

import pydantic
from email_validator import EmailNotValidError, validate_email

from userreg.mailer.policy import PermanentFailure
from userreg.shared.events import USER_CONFIRMATION_REQUESTED, USER_REGISTERED, Event, EventUser
from userreg.shared.templates import Email, RenderedEmail

CONFIRMATION = Email.CONFIRMATION.value
REGISTRATION = Email.REGISTRATION.value


class _FoldOnce(BaseHeader):
    """A header, folded once per kind of policy. A header is immutable and folds the same way every
    time, and most are the same objects in every email (the parts' headers, From) or in many (To
    in an event's emails, Date within a second, a subject): folding was most of writing an email."""

    def fold(self, *, policy: Policy) -> str:
        folds: dict[tuple, str] = self.__dict__.setdefault("_folds", {})
        key = (policy.max_line_length, policy.linesep, policy.utf8, policy.cte_type)
        folded = folds.get(key)
        if folded is None:
            folded = folds[key] = super().fold(policy=policy)
        return folded


class _ReusingHeaderRegistry(HeaderRegistry):
    """The standard registry builds a new class each time it parses a header, which made up a good
    part of composing an email; the classes depend on the header name only, so reuse them."""

    def __init__(self) -> None:
        super().__init__(base_class=_FoldOnce)
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


# Serialised with CRLF line ends, as SMTP wants them.
MAIL_POLICY = policy.SMTP.clone(header_factory=_ReusingHeaderRegistry())
# How a message to an address that is not ASCII is written (SMTPUTF8).
_UTF8_POLICY = MAIL_POLICY.clone(utf8=True)
MAX_DISPLAY_NAME = 200


def _parsed(name: str, value: Any) -> Any:
    """A header made by the policy's header registry, once; the email package stores such an object
    as it is, without parsing it again."""
    return MAIL_POLICY.header_store_parse(name, value)[1]


def _address_header(name: str, display_name: str, address: str) -> Any:
    """An address header (From, To) for one address, made by the header registry from an `Address`
    (given in its parts: the email package refuses a non-ASCII local part as an `addr_spec`, not as
    a username). None when it would not read back as that one address with that name.

    Python's folder (3.11) drops the quotes of a long display name it has to fold, so a name such as
    `a: x@evil.example, ...` would be read as a group and addresses of its own: the header is folded
    as it will be sent and parsed again, and must come back as it went in (blanks aside, which the
    folder may move)."""
    username, _, domain = address.rpartition("@")
    header = _parsed(name, Address(display_name=display_name, username=username, domain=domain))
    folded = header.fold(policy=MAIL_POLICY if address.isascii() else _UTF8_POLICY)
    # An ASCII name on one line is written as `Address` quoted it: the folder did not touch it.
    if display_name and not (display_name.isascii() and folded.count(MAIL_POLICY.linesep) == 1):
        back = _parsed(name, "".join(folded.split(MAIL_POLICY.linesep)).partition(":")[2].strip())
        read = [("".join(a.display_name.split()), a.addr_spec) for a in back.addresses]
        # A local part that is not ASCII is a defect to the parser, not to SMTPUTF8.
        defects = [defect for defect in back.defects
                   if not isinstance(defect, errors.NonASCIILocalPartDefect)]
        if defects or read != [("".join(display_name.split()), header.addresses[0].addr_spec)]:
            return None
    return header


def _forbidden_in_headers() -> str:
    """Every character that may not reach a header: each one `str.splitlines()` ends a line at
    (the email package splits header values there, so any of them could end a header and start
    another: CR, LF, VT, FF, U+001C-U+001E, U+0085, U+2028, U+2029) and every control character
    (Unicode category Cc: C0, DEL, C1). Computed over all of Unicode rather than listed by hand,
    so that a line break Python learns later is forbidden too."""
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    line_ends = {line[-1] for line in every.splitlines(keepends=True)[:-1]}
    controls = {character for character in every if unicodedata.category(character) == "Cc"}
    return "".join(sorted(line_ends | controls))


FORBIDDEN_IN_HEADERS = _forbidden_in_headers()
_FORBIDDEN = re.compile(f"[{re.escape(FORBIDDEN_IN_HEADERS)}]")
# The email package decodes RFC 2047 encoded words ("=?utf-8?q?...?=") wherever it parses a header
# value, in an address too, and writes what they decode to as it is: "=?utf-8?q?=0D=0A?=" would
# make a line break that no check saw. So no value that reaches a header holds the start of one.
ENCODED_WORD_START = "=?"
# Its end, in text the email package writes as encoded words, can make it write a broken one.
ENCODED_WORD_END = "?="
_UNSAFE = re.compile(f"{_FORBIDDEN.pattern}|{re.escape(ENCODED_WORD_START)}")


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
    """Whether `value` may go into a mail header: it has none of `FORBIDDEN_IN_HEADERS` (no line
    break of any kind, no control character) and no encoded word that the email package would
    decode into one (`ENCODED_WORD_START`). The one test every header value passes."""
    return _UNSAFE.search(value) is None


def header_value(value: str, what: str) -> str:
    """The value unchanged, or `PermanentFailure` if it could start a header of its own."""
    if not is_header_safe(value):
        raise PermanentFailure("header_injection", f"the {what} contains a line break, a control character "
                                                   "or an encoded word; it is never put into a mail header")
    return value


def header_text(value: str) -> str:
    """`value` made safe for a header as one line of text: every line break or control character
    becomes a space, an encoded word's start "=?" becomes "= ?" and its end "?=" "? =" (shown as
    written, never decoded), then each run of whitespace one space (none at the ends). What a
    template renders for a subject, user data included, goes through this: the email is sent with
    a one-line subject."""
    text = _FORBIDDEN.sub(" ", value).replace(ENCODED_WORD_START, "= ?").replace(ENCODED_WORD_END, "? =")
    return " ".join(text.split())


@dataclass(frozen=True)
class Recipient:
    address: str
    display_name: str | None
    # The To header as the email package holds it, made once for all of the event's emails.
    to_header: Any = field(default=None, repr=False, compare=False)


def recipient_of(user: EventUser) -> Recipient | None:
    """Where the user's emails go, or None when the user has no email address at all.

    The user's name is only decoration of the To header: a name that is unsafe there (a line
    break, a control character or an encoded word, see `is_header_safe`) is left out rather than
    cleaned up, so the email still reaches the user. An unsafe address is a `PermanentFailure`."""
    if not user.email:
        return None
    header_value(user.email, "recipient address")
    try:
        address = validate_email(user.email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise PermanentFailure("invalid_recipient", f"invalid recipient address: {error}") from None
    header_value(address, "recipient address")  # normalising must not have made it unsafe either
    name = user.name or ""
    # Checked before stripping: a line break at either end would otherwise slip through unseen.
    if not is_header_safe(name) or len(name) > MAX_DISPLAY_NAME:
        name = ""
    name = name.strip()
    header = _address_header("To", name, address) if name else None
    if header is None:
        name, header = "", _address_header("To", "", address)
    return Recipient(address=address, display_name=name or None, to_header=header)


@dataclass(frozen=True)
class Sender:
    """`MAIL_FROM` taken apart: the From header, the envelope address and the domain of Message-IDs."""

    header: str
    address: str
    domain: str
    # The From header as the email package holds it, made once.
    from_header: Any = None


def parse_sender(mail_from: str) -> Sender:
    """Raises ValueError for a `MAIL_FROM` that is not a usable address (checked at start-up), one
    that `is_header_safe` refuses included."""
    if not is_header_safe(mail_from):
        raise ValueError("MAIL_FROM contains a line break, a control character or an encoded word "
                         "(write a name that is not ASCII as it is, in UTF-8)")
    _, address = parseaddr(mail_from)
    if "@" not in address:
        raise ValueError(f"MAIL_FROM {mail_from!r} has no email address in it")
    header = mail_from.strip()
    parsed = _parsed("From", header)
    if parsed.defects or len(parsed.addresses) != 1:
        raise ValueError(f"MAIL_FROM {mail_from!r} is not one well-formed address")
    [sender] = parsed.addresses
    from_header = _address_header("From", sender.display_name, sender.addr_spec)
    if from_header is None:
        raise ValueError(f"MAIL_FROM {mail_from!r} does not read back as itself once written into a header")
    return Sender(header=header, address=address, domain=address.rsplit("@", 1)[1], from_header=from_header)


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


@lru_cache(maxsize=1024)
def _subject(rendered: str) -> Any:
    """The Subject header of a rendered subject, made safe with `header_text`; the same subject
    (an app's default, say) is made once."""
    return _parsed("Subject", header_text(rendered))


@lru_cache(maxsize=2)
def _date(second: int) -> Any:
    """The Date header of a second since the epoch: every email of that second shares it."""
    return _parsed("Date", datetime.fromtimestamp(second, timezone.utc))


def build_message(rendered: RenderedEmail, *, event_id: str, template: str, sender: Sender,
                  to: Recipient) -> EmailMessage:
    """A multipart/alternative message (text, then HTML).

    Every header is made by the email package's header registry (which quotes and encodes what
    needs it) from a value that passed `is_header_safe`: the subject is made safe with
    `header_text`; a Message-ID that is not safe is a `PermanentFailure`."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = sender.from_header
    message["To"] = to.to_header
    message["Subject"] = _subject(rendered.subject)
    message["Date"] = _date(int(time.time()))
    message["Message-ID"] = header_value(message_id(event_id, template, sender.domain), "Message-ID")
    message["Auto-Submitted"] = _AUTO_SUBMITTED
    message["MIME-Version"] = _MIME_VERSION
    message["Content-Type"] = _MULTIPART
    message.set_payload([_part(_TEXT, rendered.text), _part(_HTML, rendered.html)])
    return message
