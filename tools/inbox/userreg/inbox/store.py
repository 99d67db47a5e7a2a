"""The messages the inbox received: kept in memory, oldest first, at most `max_messages` of them."""

from __future__ import annotations

import asyncio
import email
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from functools import cached_property
from typing import Any

from userreg.shared.clock import utcnow

DEFAULT_MAX_MESSAGES = 1000


@dataclass
class ReceivedMessage:
    """One message as the SMTP server accepted it."""

    id: int
    received_at: datetime
    mail_from: str
    recipients: list[str]
    data: bytes

    @cached_property
    def parsed(self) -> EmailMessage:
        # SMTP carries CRLF line ends; people and tests read parts with plain newlines.
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"), policy=policy.default)

    @property
    def subject(self) -> str:
        return str(self.parsed.get("Subject", ""))

    @property
    def message_id(self) -> str:
        return str(self.parsed.get("Message-ID", ""))

    @property
    def text(self) -> str | None:
        return self._part("plain")

    @property
    def html(self) -> str | None:
        return self._part("html")

    @property
    def headers(self) -> list[tuple[str, str]]:
        """Every header as received (decoded), in order; repeated headers appear repeatedly."""
        return [(name, str(value)) for name, value in self.parsed.items()]

    def _part(self, subtype: str) -> str | None:
        part = self.parsed.get_body(preferencelist=(subtype,))
        return None if part is None else part.get_content()

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "receivedAt": self.received_at.isoformat(),
            "from": self.mail_from,
            "to": self.recipients,
            "subject": self.subject,
            "messageId": self.message_id,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "headers": [[name, value] for name, value in self.headers],
            "text": self.text,
            "html": self.html,
            "raw": self.data.decode("utf-8", errors="replace"),
        }


class MessageStore:
    """The messages received, oldest first; the oldest go once there are more than `max_messages`."""

    def __init__(self, max_messages: int = DEFAULT_MAX_MESSAGES) -> None:
        self.max_messages = max_messages
        self.messages: list[ReceivedMessage] = []
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()

    async def add(self, mail_from: str, recipients: list[str], data: bytes) -> ReceivedMessage:
        received = ReceivedMessage(
            id=next(self._ids), received_at=utcnow(), mail_from=mail_from, recipients=recipients, data=data
        )
        self.messages.append(received)
        if len(self.messages) > self.max_messages:
            del self.messages[: len(self.messages) - self.max_messages]
        async with self._arrived:
            self._arrived.notify_all()
        return received

    def find(self, message_id: int) -> ReceivedMessage | None:
        for message in self.messages:
            if message.id == message_id:
                return message
        return None

    def clear(self) -> None:
        self.messages.clear()

    def to(self, address: str) -> list[ReceivedMessage]:
        """The messages whose envelope includes this recipient."""
        wanted = address.lower()
        return [message for message in self.messages if wanted in (r.lower() for r in message.recipients)]

    async def wait_for(
        self,
        predicate: Callable[[ReceivedMessage], bool] = lambda message: True,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[ReceivedMessage]:
        """The first `count` messages matching `predicate`, waiting up to `timeout` s for them."""

        def matching() -> list[ReceivedMessage]:
            return [message for message in self.messages if predicate(message)]

        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: len(matching()) >= count), timeout)
            except TimeoutError:
                raise AssertionError(
                    f"only {len(matching())} of {count} expected message(s) arrived within {timeout}s"
                ) from None
        return matching()[:count]
