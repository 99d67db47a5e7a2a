"""The MIME message of one email: its recipient, its sender (`MAIL_FROM`), its Message-ID, and the
multipart/alternative message itself. No I/O; every header is made by `headers.py`'s registry
from a value that passed `headers.is_header_safe`. Anything wrong with the event itself is a
`PermanentFailure`: sending it again would fail the same way.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from email.utils import parseaddr
from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email

from userreg.mailer.headers import (
    MAIL_POLICY,
    address_header,
    header_text,
    header_value,
    is_header_safe,
    parsed,
)
from userreg.mailer.rules.policy import PermanentFailure
from userreg.shared.events import EventUser
from userreg.shared.templates import RenderedEmail

MAX_DISPLAY_NAME = 200


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
    header = address_header("To", name, address) if name else None
    if header is None:
        name, header = "", address_header("To", "", address)
    return Recipient(address=address, display_name=name or None, to_header=header)


@dataclass(frozen=True)
class MailFrom:
    """`MAIL_FROM` taken apart: the From header, the envelope address and the domain of Message-IDs."""

    header: str
    address: str
    domain: str
    # The From header as the email package holds it, made once.
    from_header: Any = None


def parse_mail_from(mail_from: str) -> MailFrom:
    """Raises ValueError for a `MAIL_FROM` that is not a usable address (checked at start-up), one
    that `is_header_safe` refuses included."""
    if not is_header_safe(mail_from):
        raise ValueError(
            "MAIL_FROM contains a line break, a control character or an encoded word "
            "(write a name that is not ASCII as it is, in UTF-8)"
        )
    _, address = parseaddr(mail_from)
    if "@" not in address:
        raise ValueError(f"MAIL_FROM {mail_from!r} has no email address in it")
    header = mail_from.strip()
    from_parsed = parsed("From", header)
    if from_parsed.defects or len(from_parsed.addresses) != 1:
        raise ValueError(f"MAIL_FROM {mail_from!r} is not one well-formed address")
    [sender] = from_parsed.addresses
    from_header = address_header("From", sender.display_name, sender.addr_spec)
    if from_header is None:
        raise ValueError(f"MAIL_FROM {mail_from!r} does not read back as itself once written into a header")
    return MailFrom(header=header, address=address, domain=address.rsplit("@", 1)[1], from_header=from_header)


def message_id(event_id: str, template: str, domain: str) -> str:
    """The same for every attempt at the same email, so receivers can drop a duplicate."""
    return f"<{event_id}.{template}@{domain}>"


# The parts' structure is the same in every email: parse its headers once, not per message.
# The boundary can be fixed because each part is base64, whose alphabet has no "_".
_BOUNDARY = "=_userreg_alternative_="
_MULTIPART = parsed("Content-Type", f'multipart/alternative; boundary="{_BOUNDARY}"')
_MIME_VERSION = parsed("MIME-Version", "1.0")
_BASE64 = parsed("Content-Transfer-Encoding", "base64")
_TEXT = parsed("Content-Type", 'text/plain; charset="utf-8"')
_HTML = parsed("Content-Type", 'text/html; charset="utf-8"')
# RFC 3834: automatic mail; well-behaved auto-responders do not answer it.
_AUTO_SUBMITTED = parsed("Auto-Submitted", "auto-generated")


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
    return parsed("Subject", header_text(rendered))


@lru_cache(maxsize=2)
def _date(second: int) -> Any:
    """The Date header of a second since the epoch: every email of that second shares it."""
    return parsed("Date", datetime.fromtimestamp(second, UTC))


def build_message(
    rendered: RenderedEmail, *, event_id: str, template: str, mail_from: MailFrom, to: Recipient
) -> EmailMessage:
    """A multipart/alternative message (text, then HTML).

    Every header is made by the email package's header registry (which quotes and encodes what
    needs it) from a value that passed `is_header_safe`: the subject is made safe with
    `header_text`; a Message-ID that is not safe is a `PermanentFailure`."""
    message = EmailMessage(policy=MAIL_POLICY)
    message["From"] = mail_from.from_header
    message["To"] = to.to_header
    message["Subject"] = _subject(rendered.subject)
    message["Date"] = _date(int(time.time()))
    message["Message-ID"] = header_value(message_id(event_id, template, mail_from.domain), "Message-ID")
    message["Auto-Submitted"] = _AUTO_SUBMITTED
    message["MIME-Version"] = _MIME_VERSION
    message["Content-Type"] = _MULTIPART
    message.set_payload([_part(_TEXT, rendered.text), _part(_HTML, rendered.html)])
    return message
