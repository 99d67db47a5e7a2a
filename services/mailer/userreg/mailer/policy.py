"""What a failure means: retry later, or give up and dead-letter. Plain functions, no I/O."""

from __future__ import annotations

import asyncio
import re

import aiosmtplib

# SMTP servers echo parts of the message back in errors; a confirmation token must not travel on
# into logs, headers or the dead-letter table, in whatever encoding the message carried it.
REDACTED = "[redacted]"
# A link's token as written (or with its slashes quoted-printable or percent encoded).
_LINK_TOKEN = re.compile(r"((?:/|=2F|%2F)confirm(?:/|=2F|%2F))[A-Za-z0-9_-]{8,}", re.IGNORECASE)
# Quoted-printable text broken by soft line breaks ("=" at a line's end), with the words on both
# sides: a token split there would otherwise survive in pieces no other rule recognises. The second
# form is a soft break whose line end was already turned into a space.
# (Matches start at a word's start only, which keeps the search linear on long unbroken text.)
_QP_SOFT_BROKEN = re.compile(r"(?<!\S)(?:\S*=[ \t]*(?:\r\n|\r|\n)[ \t]*|\S+=[ ](?=\S))+\S*")
# A base64 run long enough to carry part of a token (a token is 43 characters, 58 in base64; the
# bodies are base64). Words and names such as ConnectionRefusedError are runs too, but letters
# only: a shorter run is taken for base64 when it has a digit, "+", "/" or "=" in it (20 base64
# characters almost always have one), a run of 40 or more whatever it holds. URLs are matched
# first and kept (their link tokens are gone by then): a URL's path is a run too, and people
# reading a failure want to see which link it was.
_BASE64_RUN_OR_URL = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]*)|[A-Za-z0-9+/_]{20,}={0,2}")
_NOT_A_LETTER = re.compile(r"[0-9+/=]")
_MAY_BE_A_WORD = 40


def _base64_run(match: re.Match[str]) -> str:
    run = match.group()
    if match.group("url") or (len(run) < _MAY_BE_A_WORD and not _NOT_A_LETTER.search(run)):
        return run
    return REDACTED


def redact(text: str) -> str:
    """The text with every form of a confirmation-link token replaced by "[redacted]": the plain
    link's token, quoted-printable text that soft line breaks split (with the words around the
    break), and runs of base64 long enough to carry part of a token. What is left, an SMTP reply's
    code and its words, stays readable; a base64 remnant shorter than 20 characters (a line's
    tail) may stay, too short to hold a token."""
    text = _QP_SOFT_BROKEN.sub(REDACTED, text)
    text = _LINK_TOKEN.sub(r"\1" + REDACTED, text)
    return _BASE64_RUN_OR_URL.sub(_base64_run, text)


class DeliveryFailure(Exception):
    """An email could not be sent. `kind` is a short label for metrics; `reason` is for people."""

    transient = False

    def __init__(self, kind: str, reason: str) -> None:
        # Redacted before its lines are joined: a quoted-printable soft break is known by its line end.
        reason = " ".join(redact(reason).split())[:500]
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class TransientFailure(DeliveryFailure):
    """Worth trying again later: the server was away, slow, or answered 4xx."""

    transient = True


class PermanentFailure(DeliveryFailure):
    """Will fail the same way every time until someone changes something: dead-letter it."""


def classify_smtp_error(error: BaseException) -> DeliveryFailure:
    """Map an aiosmtplib (or socket) error to a transient or a permanent failure (SPEC §5)."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        # One recipient per message: its answer is the answer.
        refused = error.recipients[0] if error.recipients else None
        if refused is None:
            return TransientFailure("smtp_4xx", "recipient refused without a reply code")
        return _by_code(refused.code, f"recipient refused: {refused.code} {refused.message}")
    if isinstance(error, aiosmtplib.SMTPNotSupported):
        return PermanentFailure("smtp_unsupported", f"server cannot take this message: {error.message}")
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return _by_code(error.code, f"server answered {error.code} {error.message}")
    if isinstance(error, (aiosmtplib.SMTPTimeoutError, asyncio.TimeoutError, TimeoutError)):
        return TransientFailure("timeout", f"timed out talking to the SMTP server: {error}")
    if isinstance(error, (aiosmtplib.SMTPException, OSError)):
        # Refused or dropped connections, TLS trouble, garbled replies: the server side is unwell.
        return TransientFailure("connection", f"SMTP connection failed: {type(error).__name__}: {error}")
    return TransientFailure("error", f"{type(error).__name__}: {error}")


def _by_code(code: int, reason: str) -> DeliveryFailure:
    if 400 <= code < 500:
        return TransientFailure("smtp_4xx", reason)
    if 500 <= code < 600:
        return PermanentFailure("smtp_5xx", reason)
    # Anything else is not a valid final reply; the server is confused, which may pass.
    return TransientFailure("smtp_unexpected", reason)


def retry_delay(failed_attempts: int, delays: tuple[float, ...]) -> float | None:
    """How long to wait after the `failed_attempts`-th failed attempt (1 = the first), or None when
    every configured retry has been used and the event goes to the dead-letter queue."""
    if failed_attempts < 1:
        raise ValueError("failed_attempts counts from 1")
    if failed_attempts > len(delays):
        return None
    return delays[failed_attempts - 1]


def deferral_delay(deferrals: int, delays: tuple[float, ...], longest: float) -> float:
    """How long to wait before looking again at an event that could not be handled for a reason
    that is not its email's (another mailer holds the email, or the database is away); `deferrals`
    = how often it was deferred already. Grows like the retry delays up to `longest` (see
    `busy_deferral_limit`, `DATABASE_DEFERRAL_LIMIT`) and never runs out: a deferral is not an
    attempt."""
    usable = [delay for delay in delays if delay <= longest] or [min(delays)]
    return usable[min(deferrals, len(usable) - 1)]


# Leases. A mailer's claim on an email lasts MAILER_CLAIM_SECONDS from the last statement that set
# it (the claim, then each renewal); the database's clock decides, the same for every replica.
# The kind of a failure that is the database's, not the email's or the SMTP server's.
DATABASE = "database"
# The longest wait before looking again at an event the database was away for.
DATABASE_DEFERRAL_LIMIT = 30.0


def renewal_interval(lease: float) -> float:
    """How often a live mailer renews its claims: three times per lease, so a renewal may fail (or
    be slow) once without any claim running short, while a crashed mailer's claims lapse at most
    one lease after its last renewal."""
    return lease / 3


def may_start_send(renewed_ago: float, lease: float) -> bool:
    """Whether a send may start on a claim whose lease was last set `renewed_ago` seconds ago
    (counted from before the statement that set it, so never too little): only while at least half
    the lease is left. The claim then outlasts the start of the send (and, with the defaults, any
    server that answers within 7.5 s) even if no renewal succeeds any more; a mailer that cannot
    renew (the database is away from it) starts no send at all."""
    return renewed_ago <= lease / 2


def busy_deferral_limit(lease: float) -> float:
    """The longest wait before looking again at an email another mailer holds: a third of a lease.
    A live holder finishes within moments; a crashed one's claim lapses within a lease, and its
    email is looked at again at most this long later."""
    return lease / 3


def counts_as_attempt(failure: DeliveryFailure) -> bool:
    """Whether a transient failure uses up one of the email's retries. The database being away
    (claiming, reading the app or its templates, a claim that could not be renewed) says nothing
    about the email or the SMTP server: such an event is deferred instead, for as long as it takes,
    and never dead-lettered for it."""
    return failure.kind != DATABASE
