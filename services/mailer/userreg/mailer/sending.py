"""Handing emails over to be sent: the `Sender` protocol the service layer sends through, and
`RecordingSender`, a sender that sends nothing and keeps what it was given (tests, and composing
the mailer without a mail server). The SMTP implementation is `smtp.SmtpPool`.

A sender lends a connection for the sends of one event: the service takes it before it claims the
emails, so that a claim only has to outlast one bounded send, never a wait for a free connection.
Every failure is a `TransientFailure` (try again later) or a `PermanentFailure` (dead-letter it),
as `rules/policy.py` defines them.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from userreg.mailer.rules.policy import DeliveryFailure, TransientFailure


class Connection(Protocol):
    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: str) -> None:
        """Hand the message over with this envelope; returns once it was accepted. Raises
        `TransientFailure` or `PermanentFailure`."""


class Sender(Protocol):
    def connection(self) -> AbstractAsyncContextManager[Connection]:
        """A connection for the caller alone until the block ends; `TransientFailure` if none can
        be had (the server is away, the mailer is shutting down)."""

    async def close(self) -> None:
        """Let go of every connection; what is lent out is let go when it is returned."""


@dataclass(frozen=True)
class SentEmail:
    message: EmailMessage
    mail_from: str
    rcpt_to: str


class RecordingSender:
    """A `Sender` (and its own `Connection`) that keeps every message it is given in `sent`, or
    fails as told: `fail_next(failure, …)` decides the next sends, one each, in order (a failure
    is raised; None lets that send through), before every send is kept again."""

    def __init__(self) -> None:
        self.sent: list[SentEmail] = []
        self.closed = False
        self._failures: deque[DeliveryFailure | None] = deque()

    def fail_next(self, *failures: DeliveryFailure | None) -> None:
        self._failures.extend(failures)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[RecordingSender]:
        if self.closed:
            raise TransientFailure("shutdown", "the mailer is shutting down")
        yield self

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: str) -> None:
        failure = self._failures.popleft() if self._failures else None
        if failure is not None:
            raise failure
        self.sent.append(SentEmail(message, mail_from, rcpt_to))

    async def close(self) -> None:
        self.closed = True
