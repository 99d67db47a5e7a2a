"""`Inbox`: the SMTP server, the messages it keeps and (optionally) its web page, started and
stopped together in the current event loop. What tests use: the messages, waiting for them, and
the trouble the server can be told to make."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from userreg.inbox.smtp import Failure, Faults, SmtpServer
from userreg.inbox.store import DEFAULT_MAX_MESSAGES, MessageStore, ReceivedMessage
from userreg.inbox.web import web_app

logger = logging.getLogger(__name__)


class Inbox:
    """SMTP server plus (optionally) its web page, in the current event loop.

    Port 0 picks a free port; after `start()` the `smtp_port` and `http_port` attributes hold the
    real ones. `messages` is oldest first and keeps at most `max_messages`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        smtp_port: int = 1025,
        http_port: int | None = 8025,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """`tls_context` offers STARTTLS (and requires it), or with `implicit_tls` wraps the whole
        connection in TLS; `credentials` makes AUTH (over TLS) mandatory, like a real relay."""
        self.host = host
        self.smtp_port = smtp_port
        self.http_port = http_port
        self._store = MessageStore(max_messages)
        self._faults = Faults()
        self._smtp = SmtpServer(
            self._store, self._faults, tls_context=tls_context, implicit_tls=implicit_tls, credentials=credentials
        )
        self._runner: web.AppRunner | None = None

    # -- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        self.smtp_port = await self._smtp.start(self.host, self.smtp_port)
        if self.http_port is not None:
            app = web_app(self._store, smtp_address=f"{self.host}:{self.smtp_port}")
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.http_port, reuse_address=True)
            await site.start()
            self.http_port = self._runner.addresses[0][1]
        logger.info(
            "inbox: SMTP on %s:%d%s",
            self.host,
            self.smtp_port,
            f", web on http://{self.host}:{self.http_port}/" if self.http_port is not None else "",
        )

    async def stop(self) -> None:
        """Stop listening and hang up on every open SMTP session, as a server going away would."""
        await self._smtp.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Inbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- what tests read -----------------------------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Oldest first (the list itself: a test that reads it from another thread copies it)."""
        return self._store.messages

    @property
    def max_messages(self) -> int:
        return self._store.max_messages

    @property
    def connections_opened(self) -> int:
        """How many SMTP connections clients opened (tests check that a sender reuses its connections)."""
        return self._smtp.connections_opened

    def to(self, address: str) -> list[ReceivedMessage]:
        """The messages whose envelope includes this recipient."""
        return self._store.to(address)

    async def wait_for(
        self,
        predicate: Callable[[ReceivedMessage], bool] = lambda message: True,
        *,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[ReceivedMessage]:
        """The first `count` messages matching `predicate`, waiting up to `timeout` s for them."""
        return await self._store.wait_for(predicate, count=count, timeout=timeout)

    def clear(self) -> None:
        """Forget every message (the failures configured stay)."""
        self._store.clear()

    # -- the trouble it can make ---------------------------------------------------------------

    @property
    def reply_delay(self) -> float:
        """Seconds the server waits before answering a message's DATA (a slow server)."""
        return self._faults.reply_delay

    @reply_delay.setter
    def reply_delay(self, seconds: float) -> None:
        self._faults.reply_delay = seconds

    def fail_next(self, count: int = 1, code: int = 421, text: str = "4.3.2 Service not available, try later") -> None:
        """Answer the next `count` messages with `code` after their DATA instead of accepting them
        (a 421 also closes the connection, as a real server does)."""
        for _ in range(count):
            self._faults.next_messages.append(Failure(code, text))

    def reject_recipient(self, address: str, code: int = 550, text: str = "5.1.1 Mailbox unavailable") -> None:
        """Refuse this recipient at RCPT TO until `accept_recipient()`."""
        self._faults.recipients[address.lower()] = Failure(code, text)

    def accept_recipient(self, address: str) -> None:
        self._faults.recipients.pop(address.lower(), None)
