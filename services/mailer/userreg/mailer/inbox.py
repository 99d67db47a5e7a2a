"""A local inbox for development and tests: an SMTP server that keeps what it receives in memory,
with a small web page to read it and a JSON API for tests.

    userreg-inbox                  SMTP on INBOX_SMTP_PORT (1025), web on INBOX_HTTP_PORT (8025)

JSON API:  GET /api/messages[?to=ADDRESS]   summaries, oldest first
           GET /api/messages/{id}           one message: headers, text and HTML parts, raw source
           DELETE /api/messages             forget everything

In a test, `Inbox(smtp_port=0, http_port=None)` runs in the test's own event loop; `fail_next()`
and `reject_recipient()` make it answer like a mail server that has trouble.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import itertools
import logging
import signal
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.message import EmailMessage
from functools import cached_property
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from jinja2 import DictLoader, Environment

from userreg.shared.logs import configure_logging
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGES = 1000
MAX_MESSAGE_BYTES = 10 * 1024 * 1024


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
        return email.message_from_bytes(self.data.replace(b"\r\n", b"\n"),
                                        policy=policy.default)  # type: ignore[return-value]

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


@dataclass
class _Failure:
    code: int
    text: str


@dataclass
class _Faults:
    next_messages: deque[_Failure] = field(default_factory=deque)
    recipients: dict[str, _Failure] = field(default_factory=dict)


class Inbox:
    """SMTP server plus (optionally) its web page, in the current event loop.

    Port 0 picks a free port; after `start()` the `smtp_port` and `http_port` attributes hold the
    real ones. `messages` is oldest first and keeps at most `max_messages`.
    """

    def __init__(self, *, host: str = "127.0.0.1", smtp_port: int = 1025, http_port: int | None = 8025,
                 max_messages: int = DEFAULT_MAX_MESSAGES, tls_context: ssl.SSLContext | None = None,
                 implicit_tls: bool = False, credentials: tuple[str, str] | None = None) -> None:
        """`tls_context` offers STARTTLS (and requires it), or with `implicit_tls` wraps the whole
        connection in TLS; `credentials` makes AUTH (over TLS) mandatory, like a real relay."""
        self.host = host
        self._tls_context = tls_context
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.max_messages = max_messages
        self.messages: list[ReceivedMessage] = []
        self._ids = itertools.count(1)
        self._faults = _Faults()
        # Seconds the server waits before answering a message's DATA (a slow server, for tests).
        self.reply_delay = 0.0
        self._arrived = asyncio.Condition()
        self._server: asyncio.base_events.Server | None = None
        self._sessions: set[SMTP] = set()
        # How many SMTP connections clients opened (tests check that a sender reuses its connections).
        self.connections_opened = 0
        self._runner: web.AppRunner | None = None

    # -- running -------------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)

        security: dict[str, Any] = {}
        if self._tls_context is not None and not self._implicit_tls:
            security.update(tls_context=self._tls_context, require_starttls=True)
        if self._credentials is not None:
            security.update(auth_required=True, auth_require_tls=True, authenticator=self._authenticate)

        def session() -> SMTP:
            # A fixed hostname: aiosmtpd would otherwise look up the FQDN (blocking) per connection.
            self.connections_opened += 1
            return _TrackedSMTP(self._sessions, handler, hostname="userreg-inbox", ident="userreg inbox",
                                enable_SMTPUTF8=True, data_size_limit=MAX_MESSAGE_BYTES, loop=loop,
                                **security)

        self._server = await loop.create_server(
            session, host=self.host, port=self.smtp_port, reuse_address=True,
            ssl=self._tls_context if self._implicit_tls else None)
        self.smtp_port = self._server.sockets[0].getsockname()[1]
        if self.http_port is not None:
            self._runner = web.AppRunner(self.web_app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.http_port, reuse_address=True)
            await site.start()
            self.http_port = self._runner.addresses[0][1]
        logger.info("inbox: SMTP on %s:%d%s", self.host, self.smtp_port,
                    f", web on http://{self.host}:{self.http_port}/" if self.http_port is not None else "")

    async def stop(self) -> None:
        """Stop listening and hang up on every open SMTP session, as a server going away would."""
        if self._server is not None:
            self._server.close()
            for protocol in list(self._sessions):
                if protocol.transport is not None:
                    protocol.transport.close()
            await self._server.wait_closed()
            self._server = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Inbox:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- what tests use ------------------------------------------------------------------------

    def fail_next(self, count: int = 1, code: int = 421,
                  text: str = "4.3.2 Service not available, try later") -> None:
        """Answer the next `count` messages with `code` after their DATA instead of accepting them
        (a 421 also closes the connection, as a real server does)."""
        for _ in range(count):
            self._faults.next_messages.append(_Failure(code, text))

    def reject_recipient(self, address: str, code: int = 550,
                         text: str = "5.1.1 Mailbox unavailable") -> None:
        """Refuse this recipient at RCPT TO until `accept_recipient()`."""
        self._faults.recipients[address.lower()] = _Failure(code, text)

    def accept_recipient(self, address: str) -> None:
        self._faults.recipients.pop(address.lower(), None)

    def clear(self) -> None:
        """Forget every message (the failures configured stay)."""
        self.messages.clear()

    def to(self, address: str) -> list[ReceivedMessage]:
        """The messages whose envelope includes this recipient."""
        wanted = address.lower()
        return [message for message in self.messages if wanted in (r.lower() for r in message.recipients)]

    async def wait_for(self, predicate: Callable[[ReceivedMessage], bool] = lambda message: True, *,
                       count: int = 1, timeout: float = 10.0) -> list[ReceivedMessage]:
        """The first `count` messages matching `predicate`, waiting up to `timeout` s for them."""
        def matching() -> list[ReceivedMessage]:
            return [message for message in self.messages if predicate(message)]

        async with self._arrived:
            try:
                await asyncio.wait_for(self._arrived.wait_for(lambda: len(matching()) >= count), timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"only {len(matching())} of {count} expected message(s) arrived "
                                     f"within {timeout}s") from None
        return matching()[:count]

    # -- the SMTP side ---------------------------------------------------------------------------

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: Any) -> AuthResult:
        expected = self._credentials
        ok = (expected is not None and isinstance(auth_data, LoginPassword)
              and (auth_data.login, auth_data.password) == (expected[0].encode(), expected[1].encode()))
        return AuthResult(success=ok, handled=False)

    def _recipient_fault(self, address: str) -> _Failure | None:
        return self._faults.recipients.get(address.lower())

    def _message_fault(self) -> _Failure | None:
        return self._faults.next_messages.popleft() if self._faults.next_messages else None

    async def _store(self, envelope: Envelope) -> ReceivedMessage:
        received = ReceivedMessage(
            id=next(self._ids),
            received_at=datetime.now(timezone.utc),
            mail_from=envelope.mail_from or "",
            recipients=list(envelope.rcpt_tos),
            data=bytes(envelope.original_content or envelope.content or b""),
        )
        self.messages.append(received)
        if len(self.messages) > self.max_messages:
            del self.messages[: len(self.messages) - self.max_messages]
        async with self._arrived:
            self._arrived.notify_all()
        return received

    # -- the web side ----------------------------------------------------------------------------

    def web_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._page_index)
        app.router.add_get("/messages/{id}", self._page_message)
        app.router.add_get("/messages/{id}/raw", self._page_raw)
        app.router.add_post("/clear", self._page_clear)
        app.router.add_get("/health", self._health)
        app.router.add_get("/api/messages", self._api_list)
        app.router.add_get("/api/messages/{id}", self._api_message)
        app.router.add_delete("/api/messages", self._api_clear)
        return app

    def _find(self, request: web.Request) -> ReceivedMessage:
        try:
            wanted = int(request.match_info["id"])
        except ValueError:
            raise _not_found() from None
        for message in self.messages:
            if message.id == wanted:
                return message
        raise _not_found()

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _api_list(self, request: web.Request) -> web.Response:
        address = request.query.get("to")
        messages = self.to(address) if address else self.messages
        return web.json_response([message.summary() for message in messages])

    async def _api_message(self, request: web.Request) -> web.Response:
        return web.json_response(self._find(request).as_json())

    async def _api_clear(self, request: web.Request) -> web.Response:
        self.clear()
        return web.Response(status=204)

    async def _page_index(self, request: web.Request) -> web.Response:
        return _html(_PAGES.get_template("index").render(messages=list(reversed(self.messages)),
                                                         smtp=f"{self.host}:{self.smtp_port}"))

    async def _page_message(self, request: web.Request) -> web.Response:
        return _html(_PAGES.get_template("message").render(message=self._find(request),
                                                           smtp=f"{self.host}:{self.smtp_port}"))

    async def _page_raw(self, request: web.Request) -> web.Response:
        return web.Response(body=self._find(request).data, content_type="text/plain", charset="utf-8")

    async def _page_clear(self, request: web.Request) -> web.Response:
        self.clear()
        raise web.HTTPSeeOther("/")


class _TrackedSMTP(SMTP):
    """An SMTP session that the inbox can hang up on when it stops."""

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
    """aiosmtpd hooks: accept everything unless the inbox was told to make trouble."""

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        fault = self._inbox._recipient_fault(address)
        if fault is not None:
            return f"{fault.code} {fault.text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._inbox.reply_delay:
            await asyncio.sleep(self._inbox.reply_delay)
        fault = self._inbox._message_fault()
        if fault is not None:
            if fault.code == 421 and server.transport is not None:
                # The reply is written before this runs; closing flushes it first.
                asyncio.get_running_loop().call_soon(server.transport.close)
            return f"{fault.code} {fault.text}"
        received = await self._inbox._store(envelope)
        return f"250 OK queued as {received.id}"


def _not_found() -> web.HTTPNotFound:
    return web.HTTPNotFound(text='{"error": "no such message"}', content_type="application/json")


def _html(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/html", charset="utf-8")


_LAYOUT = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %} · userreg inbox</title>
<style>
 body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 0;
        color: #1f2937; background: #f3f4f6; }
 header { background: #111827; color: #fff; padding: 12px 24px; display: flex;
          justify-content: space-between; align-items: center; }
 header a { color: #fff; text-decoration: none; font-weight: bold; }
 main { max-width: 1100px; margin: 24px auto; padding: 0 16px; }
 table { width: 100%; border-collapse: collapse; background: #fff; }
 th, td { text-align: left; padding: 8px 12px; border-bottom: 1px solid #e5e7eb; vertical-align: top;
          font-size: 14px; }
 th { background: #f9fafb; }
 pre { background: #fff; border: 1px solid #e5e7eb; padding: 12px; white-space: pre-wrap;
       word-break: break-word; }
 iframe { width: 100%; height: 600px; border: 1px solid #e5e7eb; background: #fff; }
 .muted { color: #6b7280; }
 button { cursor: pointer; }
</style></head>
<body><header><a href="/">userreg inbox</a><span class="muted">SMTP {{ smtp }}</span></header>
<main>{% block main %}{% endblock %}</main></body></html>"""

_INDEX = """{% extends "layout" %}{% block title %}Messages{% endblock %}{% block main %}
<form method="post" action="/clear" style="margin-bottom:12px"><button type="submit">Delete all</button>
 <span class="muted">{{ messages|length }} message(s); newest first</span></form>
<table><tr><th>#</th><th>Received</th><th>To</th><th>Subject</th></tr>
{% for m in messages %}<tr><td>{{ m.id }}</td><td>{{ m.received_at.strftime("%Y-%m-%d %H:%M:%S") }}</td>
<td>{{ m.recipients|join(", ") }}</td>
<td><a href="/messages/{{ m.id }}">{{ m.subject or "(no subject)" }}</a></td></tr>
{% else %}<tr><td colspan="4" class="muted">Nothing received yet.</td></tr>{% endfor %}
</table>{% endblock %}"""

_MESSAGE = """{% extends "layout" %}{% block title %}{{ message.subject }}{% endblock %}{% block main %}
<p><a href="/">← all messages</a> · <a href="/messages/{{ message.id }}/raw">raw source</a></p>
<table>{% for name, value in message.headers %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>{% endfor %}
<tr><th>Envelope</th><td>from {{ message.mail_from }} to {{ message.recipients|join(", ") }}</td></tr></table>
{% if message.html is not none %}<h3>HTML part</h3>
<iframe sandbox="" referrerpolicy="no-referrer" srcdoc="{{ message.html }}"></iframe>{% endif %}
{% if message.text is not none %}<h3>Text part</h3><pre>{{ message.text }}</pre>{% endif %}
{% endblock %}"""

# The inbox shows whatever it was sent: autoescaped everywhere, and the HTML part only inside a
# sandboxed iframe (no scripts, no same-origin access).
_PAGES = Environment(autoescape=True,
                     loader=DictLoader({"layout": _LAYOUT, "index": _INDEX, "message": _MESSAGE}))


async def serve(settings: Settings) -> None:
    """Run the inbox until SIGINT/SIGTERM."""
    inbox = Inbox(host=settings.bind_host, smtp_port=settings.inbox_smtp_port,
                  http_port=settings.inbox_http_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await inbox.start()
    try:
        await stop.wait()
    finally:
        await inbox.stop()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level)
    # aiosmtpd logs every connection at INFO; a development inbox does not need that.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
