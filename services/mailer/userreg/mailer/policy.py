"""What a failure means: retry later, or give up and dead-letter. Plain functions, no I/O."""

from __future__ import annotations

import asyncio
import re

import aiosmtplib

# SMTP servers echo parts of the message back in errors; a confirmation token must not travel on
# into logs, headers or the dead-letter table.
_LINK_TOKEN = re.compile(r"(/confirm/)[A-Za-z0-9_-]{8,}")


def redact(text: str) -> str:
    """The text with every confirmation-link token replaced."""
    return _LINK_TOKEN.sub(r"\1[redacted]", text)


class DeliveryFailure(Exception):
    """An email could not be sent. `kind` is a short label for metrics; `reason` is for people."""

    transient = False

    def __init__(self, kind: str, reason: str) -> None:
        reason = redact(" ".join(reason.split()))[:500]
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


def claim_seconds(smtp_timeout: float) -> float:
    """How long a mailer's claim on an email lasts: longer than sending an event's emails can take
    (each SMTP command is bounded by the timeout) plus recording them, so only a crashed or cut-off
    mailer ever loses its claim."""
    return 10 * smtp_timeout + 60


def deferral_delay(deferrals: int, delays: tuple[float, ...], longest: float) -> float:
    """How long to wait before looking again at an email another mailer is sending right now
    (`deferrals` = how often it was deferred already). Grows like the retry delays up to `longest`
    (the length of a claim, after which a silent claimant has lost it) and never runs out."""
    usable = [delay for delay in delays if delay <= longest] or [min(delays)]
    return usable[min(deferrals, len(usable) - 1)]
