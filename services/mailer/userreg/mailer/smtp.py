"""The SMTP `Sender` (`sending.py`): aiosmtplib over a small pool of connections that are reused
across messages.

Opening an SMTP session costs several round trips (greeting, EHLO, maybe STARTTLS and AUTH); the
pool keeps up to `MAILER_SMTP_CONNECTIONS` sessions open and lends each to one caller at a time.
A session that broke (or may be out of step after a timeout) is closed and replaced on next use.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import socket
import time
from collections.abc import AsyncIterator
from email.generator import BytesGenerator
from email.message import EmailMessage

import aiosmtplib

from userreg.mailer.headers import MAIL_POLICY, UTF8_MAIL_POLICY
from userreg.mailer.rules.policy import DeliveryFailure, TransientFailure, classify_smtp_error
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

# A connection idle longer than this may have been dropped by the server (or a NAT) without us
# noticing; it is checked with a NOOP before it carries a message.
IDLE_CHECK_SECONDS = 10.0
QUIT_TIMEOUT_SECONDS = 2.0


class SmtpConnection:
    """One open SMTP session, lent out by `SmtpPool.connection()`."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client
        # Set when the session can no longer be trusted (dropped, or a reply may still be in flight).
        self.broken = False

    async def send(self, message: EmailMessage, *, mail_from: str, rcpt_to: str) -> None:
        """Hand the message to the server; returns once it accepted it (250 after DATA).
        Raises `TransientFailure` or `PermanentFailure`."""
        data, utf8 = serialise(message, mail_from, rcpt_to)
        try:
            await self._client.sendmail(mail_from, [rcpt_to], data, mail_options=["SMTPUTF8"] if utf8 else [])
        except aiosmtplib.SMTPRecipientsRefused as error:
            # The server said no to the recipient and the envelope was reset: the session is fine.
            raise classify_smtp_error(error) from error
        except aiosmtplib.SMTPResponseException as error:
            # A reply code: the server is in step with us unless it hung up (a 421 makes aiosmtplib close).
            self.broken = not self._client.is_connected
            raise classify_smtp_error(error) from error
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            self.broken = True
            raise classify_smtp_error(error) from error


def serialise(message: EmailMessage, mail_from: str, rcpt_to: str) -> tuple[bytes, bool]:
    """The message (made by `compose.build_message`, with `MAIL_POLICY`) as SMTP carries it, and
    whether that needs SMTPUTF8 (an address that is not ASCII). Done here rather than by
    `send_message`, which copies the whole message first."""
    utf8 = not (mail_from.isascii() and rcpt_to.isascii())
    buffer = io.BytesIO()
    BytesGenerator(buffer, policy=UTF8_MAIL_POLICY if utf8 else MAIL_POLICY).flatten(message)
    return buffer.getvalue(), utf8


class SmtpPool:
    """The `Sender` of a running mailer: up to `size` SMTP sessions to the configured server,
    opened on demand and reused."""

    def __init__(self, settings: Settings, size: int | None = None) -> None:
        if settings.smtp_tls and settings.smtp_starttls:
            raise ValueError(
                "SMTP_TLS (TLS from the start) and SMTP_STARTTLS (upgrade after connecting) exclude each other; set one"
            )
        self._settings = settings
        self._size = size or settings.mailer_smtp_connections
        self._slots = asyncio.Semaphore(self._size)
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._local_hostname: str | None = None
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[SmtpConnection]:
        """An open session for the caller alone; raises `TransientFailure` if none can be opened."""
        if self._closed:
            raise TransientFailure("shutdown", "the mailer is shutting down")
        async with self._slots:
            client = await self._checkout()
            lent = SmtpConnection(client)
            try:
                yield lent
            except DeliveryFailure:
                raise  # `send` already judged the session
            except BaseException:
                # Cancelled or failed mid-conversation: the session may be out of step.
                lent.broken = True
                raise
            finally:
                if lent.broken or self._closed or not client.is_connected:
                    client.close()
                else:
                    self._idle.append((client, time.monotonic()))

    async def _checkout(self) -> aiosmtplib.SMTP:
        while self._idle:
            client, idle_since = self._idle.pop()
            if not client.is_connected:
                client.close()
                continue
            if time.monotonic() - idle_since < IDLE_CHECK_SECONDS:
                return client
            try:
                await client.noop()
                return client
            except (TimeoutError, aiosmtplib.SMTPException, OSError):
                client.close()
        return await self._open()

    async def _open(self) -> aiosmtplib.SMTP:
        settings = self._settings
        if self._local_hostname is None:
            # The EHLO name; looking it up may block, so once and off the event loop.
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            use_tls=settings.smtp_tls,
            # Upgrade only when told to (False, never aiosmtplib's default None, which means "when offered"):
            # an opportunistic STARTTLS would fail on self-signed certificates.
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout,
            local_hostname=self._local_hostname,
        )
        try:
            await client.connect()
        except (TimeoutError, aiosmtplib.SMTPException, OSError) as error:
            client.close()
            failure = classify_smtp_error(error)
            logger.warning(
                "cannot open an SMTP session to %s:%s: %s", settings.smtp_host, settings.smtp_port, failure.reason
            )
            # Whatever the server said while we were only connecting (even a 5xx to our AUTH) is about
            # the server or our configuration, not about a message: always worth a later retry.
            raise TransientFailure(failure.kind, failure.reason) from error
        return client

    async def close(self) -> None:
        """Say goodbye to every idle session; sessions still lent out are closed when returned."""
        self._closed = True
        idle, self._idle = self._idle, []
        for client, _ in idle:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, asyncio.TimeoutError):
                await client.quit(timeout=QUIT_TIMEOUT_SECONDS)
            client.close()
