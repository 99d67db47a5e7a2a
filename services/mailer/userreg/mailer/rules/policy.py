"""What a failure means: retry later, or give up and dead-letter; and how long to wait before an
event is looked at again. Plain functions, no I/O."""

from __future__ import annotations

import asyncio

import aiosmtplib

from userreg.mailer.rules.redaction import redact

# The kind of a failure that is the database's, not the email's or the SMTP server's.
DATABASE = "database"
# The longest wait before looking again at an event the database was away for.
DATABASE_DEFERRAL_LIMIT = 30.0


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
    """Map an aiosmtplib (or socket) error to a transient or a permanent failure (docs/api.md, Emails)."""
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


def counts_as_attempt(failure: DeliveryFailure) -> bool:
    """Whether a transient failure uses up one of the email's retries. The database being away
    (claiming, reading the app or its templates, a claim that could not be renewed) says nothing
    about the email or the SMTP server: such an event is deferred instead, for as long as it takes,
    and never dead-lettered for it."""
    return failure.kind != DATABASE


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


def busy_deferral_limit(lease: float) -> float:
    """The longest wait before looking again at an email another mailer holds: a third of a lease.
    A live holder finishes within moments; a crashed one's claim lapses within a lease, and its
    email is looked at again at most this long later."""
    return lease / 3
