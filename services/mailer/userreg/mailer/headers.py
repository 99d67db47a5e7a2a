"""Mail headers (the README's Security section): which values may reach a header at all, and the header registry that
makes every header of the mailer's messages (none is set from a raw string). No I/O.

A value reaches a header only if `is_header_safe` passes it: no line break of any kind, no control
character, no encoded-word start. Headers are made by the email package's registry, which quotes
and encodes what needs it; address headers are folded as they will be sent and parsed again, and
left out when they would not read back as themselves.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from email import errors, policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.policy import EmailPolicy, Policy
from typing import Any, cast

from userreg.mailer.rules.policy import PermanentFailure


class _FoldOnce(BaseHeader):
    """A header, folded once per kind of policy. A header is immutable and folds the same way every
    time, and most are the same objects in every email (the parts' headers, From) or in many (To
    in an event's emails, Date within a second, a subject): folding was most of writing an email."""

    def fold(self, *, policy: Policy) -> str:
        folds: dict[tuple, str] = self.__dict__.setdefault("_folds", {})
        # Header objects exist only under an `EmailPolicy` (compat32 has no header registry).
        key = (policy.max_line_length, policy.linesep, cast(EmailPolicy, policy).utf8, policy.cte_type)
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
UTF8_MAIL_POLICY = MAIL_POLICY.clone(utf8=True)


def parsed(name: str, value: Any) -> Any:
    """A header made by the policy's header registry, once; the email package stores such an object
    as it is, without parsing it again."""
    return MAIL_POLICY.header_store_parse(name, value)[1]


def address_header(name: str, display_name: str, address: str) -> Any:
    """An address header (From, To) for one address, made by the header registry from an `Address`
    (given in its parts: the email package refuses a non-ASCII local part as an `addr_spec`, not as
    a username). None when it would not read back as that one address with that name.

    Python's folder (3.11) drops the quotes of a long display name it has to fold, so a name such as
    `a: x@evil.example, ...` would be read as a group and addresses of its own: the header is folded
    as it will be sent and parsed again, and must come back as it went in (blanks aside, which the
    folder may move)."""
    username, _, domain = address.rpartition("@")
    header = parsed(name, Address(display_name=display_name, username=username, domain=domain))
    folded = header.fold(policy=MAIL_POLICY if address.isascii() else UTF8_MAIL_POLICY)
    # An ASCII name on one line is written as `Address` quoted it: the folder did not touch it.
    if display_name and not (display_name.isascii() and folded.count(MAIL_POLICY.linesep) == 1):
        back = parsed(name, "".join(folded.split(MAIL_POLICY.linesep)).partition(":")[2].strip())
        read = [("".join(a.display_name.split()), a.addr_spec) for a in back.addresses]
        # A local part that is not ASCII is a defect to the parser, not to SMTPUTF8.
        defects = [defect for defect in back.defects if not isinstance(defect, errors.NonASCIILocalPartDefect)]
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


def is_header_safe(value: str) -> bool:
    """Whether `value` may go into a mail header: it has none of `FORBIDDEN_IN_HEADERS` (no line
    break of any kind, no control character) and no encoded word that the email package would
    decode into one (`ENCODED_WORD_START`). The one test every header value passes."""
    return _UNSAFE.search(value) is None


def header_value(value: str, what: str) -> str:
    """The value unchanged, or `PermanentFailure` if it could start a header of its own."""
    if not is_header_safe(value):
        raise PermanentFailure(
            "header_injection",
            f"the {what} contains a line break, a control character "
            "or an encoded word; it is never put into a mail header",
        )
    return value


def header_text(value: str) -> str:
    """`value` made safe for a header as one line of text: every line break or control character
    becomes a space, an encoded word's start "=?" becomes "= ?" and its end "?=" "? =" (shown as
    written, never decoded), then each run of whitespace one space (none at the ends). What a
    template renders for a subject, user data included, goes through this: the email is sent with
    a one-line subject."""
    text = _FORBIDDEN.sub(" ", value).replace(ENCODED_WORD_START, "= ?").replace(ENCODED_WORD_END, "? =")
    return " ".join(text.split())
