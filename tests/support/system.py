"""The whole userreg system as real processes, for end-to-end and fault tests.

`System` starts registration, mailer, confirmation-web and (with `with_console=True`) the console
from their console scripts, as `userreg run` does (the same service table, the same environment for
each child), against the test session's own database and events exchange, on free ports. The SMTP
server is the local `Inbox`, running in a background event loop of the test process so tests can
read what it received and take it down. With `via_proxies=True` the services reach RabbitMQ,
PostgreSQL (registration only) and SMTP (the mailer) through `TcpProxy`s a fault test can cut:

    registration ──db proxy──▶ PostgreSQL ◀── mailer, confirmation-web, console
    registration, mailer, confirmation-web, console ──amqp proxy──▶ RabbitMQ
    mailer ──smtp proxy──▶ inbox ◀── console (its test emails)

With `replicas={"mailer": 2, …}` a service runs as that many processes (replicas), each on a
port of its own, all going through the same proxies, the same database and the same exchange;
`processes[name]` is the first replica, `replicas[name]` all of them.

Stopping it stops every process (and whatever is left of their process groups), the proxies and the
inbox, and removes the delay queues of its own retry delays; the rest of the session's topology is
removed at the end of the test session (the root conftest).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

from tests.support.api import NEW_PASSWORD, PASSWORD
from tests.support.background import BackgroundLoop
from tests.support.polling import eventually, free_port
from tests.support.processes import ServiceProcess
from tests.support.tcp_proxy import TcpProxy
from userreg.admin.local.environment import child_environment, environment_value
from userreg.admin.local.services import CONSOLE, INBOX, SERVICES, Service
from userreg.inbox import Inbox, ReceivedMessage
from userreg.shared.messaging import Topology, delete_queues
from userreg.shared.settings import Settings

# Short retry delays, many of them: an SMTP outage of several seconds is waited out, never
# dead-lettered. A short SMTP timeout keeps the mailer's claim on an email short (a claim of a
# killed mailer must expire before its email is tried again).
TEST_TUNING: dict[str, Any] = {
    "mailer_retry_delays": "0.5,1,2,3,5,5,5,5,5,5,5,5",
    "smtp_timeout": 2.0,
    "mailer_prefetch": 32,
    "outbox_poll_seconds": 0.5,
    "resend_cooldown_seconds": 60,
    "log_level": "INFO",
}
START_TIMEOUT = 60.0
LEAKS = {
    "an argon2 hash": re.compile(r"\$argon2id?\$"),
    "a confirmation link's token": re.compile(r"/confirm/[A-Za-z0-9_-]{20,}"),
    "a password-reset link's token": re.compile(r"/reset-password/[A-Za-z0-9_-]{20,}"),
}
MAX_INBOX_MESSAGES = 1_000_000


def _with_port(url: str, host: str, port: int) -> str:
    """The URL with its host and port replaced (user and password kept)."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@dataclass(frozen=True)
class Email:
    """What a test needs of a received message."""

    recipient: str
    subject: str
    message_id: str
    text: str
    html: str | None
    received_at: datetime

    @classmethod
    def of(cls, message: ReceivedMessage) -> Email:
        return cls(
            recipient=message.recipients[0].lower() if message.recipients else "",
            subject=message.subject,
            message_id=message.message_id,
            text=message.text or "",
            html=message.html,
            received_at=message.received_at,
        )


class System:
    """Registration, mailer, confirmation-web and (optionally) the console as processes, with the
    inbox and (optionally) proxies.

    `start()` and `stop()` are plain calls (for a package-scoped fixture); everything a test does
    with it is awaited from the test's own loop."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        via_proxies: bool = False,
        replicas: dict[str, int] | None = None,
        with_console: bool = False,
        **tuning: Any,
    ) -> None:
        self.name = name
        self.with_console = with_console
        self.replica_counts = {service.name: 1 for service in self.services} | (replicas or {})
        unknown = set(self.replica_counts) - {service.name for service in self.services}
        assert not unknown, f"no such service: {sorted(unknown)}"
        self.via_proxies = via_proxies
        self.base_settings = settings
        self.tuning = {**TEST_TUNING, **tuning}
        self.background = BackgroundLoop(f"system-{name}")
        self.inbox = Inbox(smtp_port=0, http_port=None, max_messages=MAX_INBOX_MESSAGES)
        self.proxies: dict[str, TcpProxy] = {}
        self.processes: dict[str, ServiceProcess] = {}  # the first replica of each service
        self.replicas: dict[str, list[ServiceProcess]] = {}
        self.settings: Settings = settings  # the children's (the first replicas' ports), once started
        self.service_settings: dict[str, Settings] = {}
        self.smtp_server_up = False

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def services(self) -> list[Service]:
        """What runs as a process: every service of `userreg run` but its inbox (ours is in-process),
        and the console only when asked for (`with_console=True`): the API's tests need none."""
        return [
            service for service in SERVICES if service is not INBOX and (self.with_console or service is not CONSOLE)
        ]

    def start(self) -> None:
        self.background.start()
        try:
            self.background.run(self._start(), timeout=START_TIMEOUT * 2)
        except BaseException:
            self.stop()
            raise

    async def _start(self) -> None:
        await self.inbox.start()
        self.smtp_server_up = True
        amqp_host, amqp_port = _host_port(self.base_settings.amqp_dsn, 5672)
        database = make_url(self.base_settings.database_dsn)
        if self.via_proxies:
            self.proxies = {
                "amqp": TcpProxy(amqp_host, amqp_port),
                "database": TcpProxy(database.host or "127.0.0.1", database.port or 5432),
                "smtp": TcpProxy("127.0.0.1", self.inbox.smtp_port),
            }
            for proxy in self.proxies.values():
                await proxy.restore()
        host = "127.0.0.1"
        confirmation_port = free_port()
        self.settings = self.base_settings.model_copy(
            update={
                **self.tuning,
                "bind_host": host,
                "registration_port": free_port(),
                "confirmation_port": confirmation_port,
                "mailer_port": free_port(),
                "console_port": free_port(),
                "public_confirmation_url": f"http://{host}:{confirmation_port}",
                "smtp_host": host,
                "smtp_port": self.inbox.smtp_port,
                "smtp_tls": False,
                "smtp_starttls": False,
                "mail_from": "userreg tests <no-reply@userreg.test>",
            }
        )
        for service in self.services:
            self.service_settings[service.name] = self._proxied(service, self.settings)
            self.replicas[service.name] = [
                self._replica(service, number) for number in range(1, self.replica_counts[service.name] + 1)
            ]
            self.processes[service.name] = self.replicas[service.name][0]
        for process in self.all_processes:
            process.log_path.write_bytes(b"")  # this run's logs only: `leaks()` reads them
        # Side by side: each declares the topology it needs, none waits for another.
        await asyncio.gather(*(process.start(timeout=START_TIMEOUT) for process in self.all_processes))

    def _replica(self, service: Service, number: int) -> ServiceProcess:
        """The `number`th process of the service: the first on the system's port for it, any other
        on a port of its own (everything else alike)."""
        settings = self.service_settings[service.name]
        name = f"{self.name}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{service.name}"
        if number > 1:
            name = f"{name}-{number}"
            settings = settings.model_copy(update={service.port_setting: free_port()})
        port = getattr(settings, service.port_setting)
        return ServiceProcess(
            name, service.command, self._environment(service, settings), f"http://127.0.0.1:{port}{service.health_path}"
        )

    @property
    def all_processes(self) -> list[ServiceProcess]:
        """Every replica of every service, in start order."""
        return [process for replicas in self.replicas.values() for process in replicas]

    def _proxied(self, service: Service, settings: Settings) -> Settings:
        if not self.proxies:
            return settings
        amqp = _with_port(settings.amqp_dsn, "127.0.0.1", self.proxies["amqp"].port)
        changes: dict[str, Any] = {"amqp_url": amqp}
        if service.name == "registration":
            url = make_url(settings.database_dsn).set(host="127.0.0.1", port=self.proxies["database"].port)
            changes["database_url"] = url.render_as_string(hide_password=False)
        if service.name == "mailer":
            changes["smtp_port"] = self.proxies["smtp"].port
        return settings.model_copy(update=changes)

    def _environment(self, service: Service, settings: Settings) -> dict[str, str]:
        """Every setting spelled out (the tuning above included), then the service's own exactly as
        `userreg run` gives them; nothing of the outer environment's userreg settings leaks in."""
        names = {name.upper() for name in Settings.model_fields}
        environ = {key: value for key, value in os.environ.items() if key.upper() not in names}
        for name in Settings.model_fields:
            value = environment_value(getattr(settings, name))
            if value is not None:
                environ[name.upper()] = value
        return child_environment(service, settings, environ)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL to its whole group), the proxies and the inbox,
        and remove the delay queues of this system's own retry delays."""
        for process in reversed(self.all_processes):
            with contextlib.suppress(Exception):
                self.background.run(process.stop(timeout=15), timeout=60)
            process.kill_group()
        if self.background.loop is not None:
            with contextlib.suppress(Exception):
                self.background.run(self._stop_servers(), timeout=30)
            self.background.stop()
        if self.settings is not self.base_settings:
            asyncio.run(self._delete_retry_queues())

    async def _stop_servers(self) -> None:
        for proxy in self.proxies.values():
            await proxy.cut()
        await self.inbox.stop()
        self.smtp_server_up = False

    async def _delete_retry_queues(self) -> None:
        """The session's topology (default delays) is removed at the end of the session; the delay
        queues of this system's own delays are removed here."""
        topology = Topology.from_settings(self.settings)
        await delete_queues(
            self.settings.amqp_dsn, [topology.mailer_retry_queue(delay) for delay in topology.mailer_retry_delays]
        )

    def leaks(self, secrets: Iterable[str] = (PASSWORD, NEW_PASSWORD)) -> list[str]:
        """Where this run's logs of the services show a secret: one of `secrets`, an argon2 hash,
        or a link's token. Empty when none does."""
        found = []
        for process in self.all_processes:
            log = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
            name = process.log_path.name
            found += [f"{name}: a password" for secret in secrets if secret in log]
            found += [f"{name}: {what}" for what, pattern in LEAKS.items() if pattern.search(log)]
        return found

    # -- what tests use --------------------------------------------------------------------------

    @property
    def registration_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.registration_port}"

    @property
    def registration_urls(self) -> list[str]:
        """The base URL of every registration replica (the first is `registration_url`)."""
        return [f"http://127.0.0.1:{urlsplit(process.health_url).port}" for process in self.replicas["registration"]]

    @property
    def confirmation_url(self) -> str:
        return self.settings.public_confirmation_url

    @property
    def mailer_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.mailer_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.console_port}"

    @property
    def topology(self) -> Topology:
        return Topology.from_settings(self.settings)

    def process(self, name: str) -> ServiceProcess:
        return self.processes[name]

    async def cut(self, name: str) -> None:
        """Make RabbitMQ ("amqp"), PostgreSQL ("database") or the SMTP server ("smtp") unreachable."""
        await self.background.call(self.proxies[name].cut())

    async def restore(self, name: str) -> None:
        await self.background.call(self.proxies[name].restore())

    async def stop_smtp_server(self) -> None:
        """The SMTP server goes away: it stops listening and hangs up on every session."""
        await self.background.call(self.inbox.stop())
        self.smtp_server_up = False

    async def start_smtp_server(self) -> None:
        """The SMTP server is back, on the same port, with everything it received before."""
        if not self.smtp_server_up:
            await self.background.call(self.inbox.start())
            self.smtp_server_up = True

    async def make_whole(self) -> None:
        """Undo whatever a test did: every proxy open, the SMTP server up, every service running
        (anything a killed service left in its process group is removed first)."""
        for name in self.proxies:
            await self.restore(name)
        await self.start_smtp_server()
        self.inbox.reply_delay = 0.0
        for process in self.all_processes:
            if not process.running:
                process.kill_group()
                await process.start(timeout=START_TIMEOUT)

    def emails(self, recipients: Iterable[str] | None = None) -> list[Email]:
        """Every email received so far (to these recipients, if given), oldest first."""
        wanted = None if recipients is None else {address.lower() for address in recipients}
        received = list(self.inbox.messages)  # a copy: the background loop keeps appending
        return [email for email in map(Email.of, received) if wanted is None or email.recipient in wanted]

    def arrivals(self, recipients: Iterable[str]) -> list[tuple[str, datetime]]:
        """(recipient, received at) of every message to these recipients: cheap, nothing is parsed."""
        wanted = {address.lower() for address in recipients}
        return [
            (recipient, message.received_at)
            for message in list(self.inbox.messages)
            for recipient in (r.lower() for r in message.recipients[:1])
            if recipient in wanted
        ]

    def emails_to(self, address: str) -> list[Email]:
        return self.emails([address])

    async def wait_for_emails(self, address: str, count: int = 1, *, timeout: float = 30.0) -> list[Email]:
        """The first `count` emails to `address`, waiting up to `timeout` s for them."""

        def arrived() -> list[Email]:
            emails = self.emails_to(address)
            return emails if len(emails) >= count else []

        found = await eventually(arrived, timeout=timeout, interval=0.1, what=f"{count} email(s) to {address}")
        return found[:count]

    def link_in(self, email: Email) -> str:
        """The confirmation link an email carries (its text part), which must point at our service."""
        pattern = re.escape(self.confirmation_url) + r"/[0-9A-Fa-f-]+/confirm/[A-Za-z0-9_-]+"
        links = set(re.findall(pattern, email.text))
        assert len(links) == 1, f"expected one confirmation link in {email.subject!r}, found {len(links)}"
        return links.pop()

    def reset_link_in(self, email: Email) -> str:
        """The password-reset link an email carries (its text part), which must point at our service."""
        pattern = re.escape(self.confirmation_url) + r"/[0-9A-Fa-f-]+/reset-password/[A-Za-z0-9_-]+"
        links = set(re.findall(pattern, email.text))
        assert len(links) == 1, f"expected one password-reset link in {email.subject!r}, found {len(links)}"
        return links.pop()


def unique_address(label: str = "user") -> str:
    return f"{label}.{uuid.uuid4().hex[:12]}@example.com"
