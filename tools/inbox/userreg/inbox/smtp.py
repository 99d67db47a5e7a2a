"""The inbox's SMTP side, on aiosmtpd: it accepts every message unless told to make trouble (a
reply code after DATA, a refused recipient, a slow answer), can require STARTTLS or TLS and AUTH
like a real relay, and hangs up on its open sessions when it stops, as a server going away would."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from userreg.inbox.store import MessageStore

MAX_MESSAGE_BYTES = 10 * 1024 * 1024
# A fixed hostname: aiosmtpd would otherwise look up the FQDN (blocking) per connection.
HOSTNAME = "userreg-inbox"


@dataclass
class Failure:
    code: int
    text: str


@dataclass
class Faults:
    """The trouble the server was told to make."""

    next_messages: deque[Failure] = field(default_factory=deque)
    recipients: dict[str, Failure] = field(default_factory=dict)
    # Seconds the server waits before answering a message's DATA (a slow server).
    reply_delay: float = 0.0

    def recipient_fault(self, address: str) -> Failure | None:
        return self.recipients.get(address.lower())

    def message_fault(self) -> Failure | None:
        return self.next_messages.popleft() if self.next_messages else None


class SmtpServer:
    """Listens for SMTP and stores what it accepts in `store`.

    `tls_context` offers STARTTLS (and requires it), or with `implicit_tls` wraps the whole
    connection in TLS; `credentials` makes AUTH (over TLS) mandatory."""

    def __init__(
        self,
        store: MessageStore,
        faults: Faults,
        *,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self._store = store
        self._faults = faults
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[SMTP] = set()
        # How many SMTP connections clients opened (tests check that a sender reuses its connections).
        self.connections_opened = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on `host`:`port` (0: a free port); returns the port."""
        loop = asyncio.get_running_loop()
        handler = _Handler(self._store, self._faults)
        security: dict[str, Any] = {}
        if self._tls_context is not None and not self._implicit_tls:
            security.update(tls_context=self._tls_context, require_starttls=True)
        if self._credentials is not None:
            security.update(auth_required=True, auth_require_tls=True, authenticator=self._authenticate)

        def session() -> SMTP:
            self.connections_opened += 1
            return _TrackedSMTP(
                self._sessions,
                handler,
                hostname=HOSTNAME,
                ident="userreg inbox",
                enable_SMTPUTF8=True,
                data_size_limit=MAX_MESSAGE_BYTES,
                loop=loop,
                **security,
            )

        self._server = await loop.create_server(
            session, host=host, port=port, reuse_address=True, ssl=self._tls_context if self._implicit_tls else None
        )
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and hang up on every open SMTP session."""
        if self._server is None:
            return
        self._server.close()
        for protocol in list(self._sessions):
            if protocol.transport is not None:
                protocol.transport.close()
        await self._server.wait_closed()
        self._server = None

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        expected = self._credentials
        ok = (
            expected is not None
            and isinstance(auth_data, LoginPassword)
            and (auth_data.login, auth_data.password) == (expected[0].encode(), expected[1].encode())
        )
        return AuthResult(success=ok, handled=False)


class _TrackedSMTP(SMTP):
    """An SMTP session that the server can hang up on when it stops."""

    def __init__(self, sessions: set[SMTP], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tracked_in = sessions

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tracked_in.add(self)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self._tracked_in.discard(self)
        super().connection_lost(error)


class _Handler:
    """aiosmtpd hooks: accept everything unless the faults say otherwise."""

    def __init__(self, store: MessageStore, faults: Faults) -> None:
        self._store = store
        self._faults = faults

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        fault = self._faults.recipient_fault(address)
        if fault is not None:
            return f"{fault.code} {fault.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._faults.reply_delay:
            await asyncio.sleep(self._faults.reply_delay)
        fault = self._faults.message_fault()
        if fault is not None:
            if fault.code == 421 and server.transport is not None:
                # The reply is written before this runs; closing flushes it first.
                asyncio.get_running_loop().call_soon(server.transport.close)
            return f"{fault.code} {fault.text}"
        received = await self._store.add(
            mail_from=envelope.mail_from or "",
            recipients=list(envelope.rcpt_tos),
            data=envelope.original_content or b"",
        )
        return f"250 OK queued as {received.id}"
