"""The System page (services/console/README.md): each service's health and readiness, the outbox backlog, and the
depth of every queue of the topology, dead letters included. Every probe is bounded in time and
reports its own failure: the page shows what it could learn, never an error instead."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import aio_pika
import aiohttp
from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import system as repository
from userreg.shared.messaging import Topology, seconds_label
from userreg.shared.service_urls import CONSOLE_SERVICE_NAMES
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

PROBE_SECONDS = 2.0


def service_urls_of(settings: Settings) -> dict[str, str]:
    """Each service's base URL: as CONSOLE_SERVICE_URLS names it, else on this host at its port
    from the settings (a bind-all address is reached through the loopback interface)."""
    host = settings.bind_host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    ports = {
        "registration": settings.registration_port,
        "confirmation-web": settings.confirmation_port,
        "mailer": settings.mailer_port,
    }
    named = settings.console_service_url_overrides
    return {name: named.get(name, f"http://{host}:{ports[name]}") for name in CONSOLE_SERVICE_NAMES}


@dataclass(frozen=True)
class Probe:
    """One endpoint's answer: ok or not, and what it said ("HTTP 503", "unreachable", …)."""

    ok: bool
    said: str
    checks: tuple[tuple[str, str], ...] = ()  # /ready's own checks: (name, "ok" | "unreachable")


@dataclass(frozen=True)
class ServiceState:
    name: str
    url: str
    health: Probe
    ready: Probe


@dataclass(frozen=True)
class QueueState:
    name: str
    purpose: str
    messages: int | None  # None: the depth could not be read (see `problem`)
    consumers: int | None
    problem: str | None = None


@dataclass(frozen=True)
class SystemState:
    services: tuple[ServiceState, ...]
    outbox_backlog: int | None
    oldest_outbox_event: datetime | None
    queues: tuple[QueueState, ...]
    broker_problem: str | None

    @property
    def dead_letters(self) -> int | None:
        return next((queue.messages for queue in self.queues if queue.purpose == "Dead letters"), None)


def queue_purposes(topology: Topology) -> dict[str, str]:
    """Each queue of the topology with what it is for, as the page says it."""
    purposes = {topology.mailer_queue: "Mailer work queue", topology.mailer_dead_letter_queue: "Dead letters"}
    for delay in topology.mailer_retry_delays:
        purposes[topology.mailer_retry_queue(delay)] = f"Retry after {seconds_label(delay)} s"
    return purposes


class System:
    def __init__(
        self, sessions: async_sessionmaker, service_urls: dict[str, str], amqp_url: str, topology: Topology
    ) -> None:
        self._sessions = sessions
        self._service_urls = service_urls
        self._amqp_url = amqp_url
        self._topology = topology

    async def state(self) -> SystemState:
        services, (backlog, oldest), (queues, broker_problem) = await asyncio.gather(
            self._services(), self._outbox(), self._queues()
        )
        return SystemState(services, backlog, oldest, queues, broker_problem)

    async def _services(self) -> tuple[ServiceState, ...]:
        timeout = aiohttp.ClientTimeout(total=PROBE_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as http:

            async def service(name: str, url: str) -> ServiceState:
                health, ready = await asyncio.gather(_probe(http, f"{url}/health"), _probe(http, f"{url}/ready"))
                return ServiceState(name, url, health, ready)

            return tuple(await asyncio.gather(*(service(name, url) for name, url in self._service_urls.items())))

    async def _outbox(self) -> tuple[int | None, datetime | None]:
        try:
            async with asyncio.timeout(PROBE_SECONDS), self._sessions() as session:
                return await repository.outbox_backlog(session)
        except (Exception, TimeoutError) as error:  # the page still shows the rest
            logger.warning("system page: the outbox backlog could not be read (%s)", type(error).__name__)
            return None, None

    async def _queues(self) -> tuple[tuple[QueueState, ...], str | None]:
        purposes = queue_purposes(self._topology)
        try:
            async with asyncio.timeout(PROBE_SECONDS * 2):
                connection = await aio_pika.connect(
                    self._amqp_url,
                    timeout=PROBE_SECONDS,
                    client_properties={"connection_name": "userreg-console-system"},
                )
                async with connection:
                    return tuple([await _queue(connection, name, purpose) for name, purpose in purposes.items()]), None
        except (Exception, TimeoutError) as error:
            logger.warning("system page: RabbitMQ could not be asked (%s)", type(error).__name__)
            return tuple(
                QueueState(name, purpose, None, None) for name, purpose in purposes.items()
            ), f"RabbitMQ unreachable ({type(error).__name__})"


async def _queue(connection: aio_pika.abc.AbstractConnection, name: str, purpose: str) -> QueueState:
    """The queue's depth and consumers, by a passive declaration (which changes nothing; a queue
    that is not there closes its channel, hence a channel per queue)."""
    try:
        async with connection.channel() as channel:
            queue = await channel.declare_queue(name, passive=True)
            result = queue.declaration_result
            return QueueState(name, purpose, result.message_count, result.consumer_count)
    except aio_pika.exceptions.ChannelClosed:
        return QueueState(name, purpose, None, None, "not declared yet")


async def _probe(http: aiohttp.ClientSession, url: str) -> Probe:
    try:
        async with http.get(url, allow_redirects=False) as response:
            body = await response.json(content_type=None) if response.content_length != 0 else None
            checks = (
                tuple((key, str(value)) for key, value in body.items() if key != "status")
                if isinstance(body, dict)
                else ()
            )
            ok = response.status == 200
            return Probe(ok, "ok" if ok else f"HTTP {response.status}", checks)
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return Probe(False, f"unreachable ({type(error).__name__})")
