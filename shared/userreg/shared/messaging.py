"""The RabbitMQ topology of userreg, declared the same way by every service (idempotent).

Queues that hold work are declared here, by everyone, so that an event published before its
consumer ever started is kept rather than dropped as unroutable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection, FieldValue
from aio_pika.connection import make_url

from userreg.shared.events import (
    USER_CONFIRMATION_REQUESTED,
    USER_EMAIL_CHANGE_REQUESTED,
    USER_PASSWORD_CHANGED,
    USER_PASSWORD_RESET_REQUESTED,
    USER_REGISTERED,
)
from userreg.shared.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10.0
QUORUM: dict[str, FieldValue] = {"x-queue-type": "quorum"}
# Quorum queues dead-letter at-most-once unless told otherwise; these two make it at-least-once.
SAFE_DEAD_LETTERING = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
# Retry delays of the mailer, in seconds: transient SMTP failures wait in these queues.
MAILER_RETRY_DELAYS: tuple[float, ...] = (5, 30, 300, 1800, 7200)
# A poison message is dead-lettered after this many deliveries, so it can never loop forever.
MAILER_DELIVERY_LIMIT = 20
# RabbitMQ 4 gives a quorum queue declared without a delivery limit a limit of 20 and counts the
# messages handed back to it (4.0–4.2 every return, from 4.3 a reject or a closed channel): the
# dead-letter queue, browsed without acknowledging and with no dead-letter target of its own, would
# drop its letters after some twenty `userreg dead-letters list`. So on RabbitMQ 4 it gets a limit
# nothing reaches (the largest 32-bit one). Not -1, RabbitMQ 4's "no limit": pamqp 3.3, which
# aio-pika speaks through, cannot encode a small negative number in a table; and with a limit,
# letters handed back keep their place, as on RabbitMQ 3. RabbitMQ 3 gets no argument: it has no
# limit unless given one (and would read a negative one as "drop at the first return").
DEAD_LETTER_DELIVERY_LIMIT = 2**31 - 1
FIRST_MAJOR_VERSION_WITH_A_DEFAULT_DELIVERY_LIMIT = 4

logger = logging.getLogger(__name__)


def seconds_label(seconds: float) -> str:
    """A delay as it appears in a queue name: 5 → "5", 0.2 → "0.2"."""
    return f"{seconds:g}"


@dataclass(frozen=True)
class Topology:
    """The names of every exchange and queue, derived from the one configurable exchange name
    (and, for the mailer's delay queues, from the configured retry delays)."""

    exchange: str
    mailer_retry_delays: tuple[float, ...] = MAILER_RETRY_DELAYS

    @classmethod
    def from_settings(cls, settings: Settings) -> Topology:
        return cls(settings.events_exchange, settings.mailer_retry_delay_seconds)

    @property
    def mailer_queue(self) -> str:
        return f"{self.exchange}.mailer"

    @property
    def mailer_dead_letter_queue(self) -> str:
        return f"{self.exchange}.mailer.dead"

    def mailer_retry_queue(self, delay_seconds: float) -> str:
        return f"{self.exchange}.mailer.retry.{seconds_label(delay_seconds)}s"

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue `declare_topology` declares."""
        return (
            self.mailer_queue,
            self.mailer_dead_letter_queue,
            *(self.mailer_retry_queue(delay) for delay in self.mailer_retry_delays),
        )

    @property
    def mailer_routing_keys(self) -> tuple[str, ...]:
        return (
            USER_REGISTERED,
            USER_CONFIRMATION_REQUESTED,
            USER_PASSWORD_RESET_REQUESTED,
            USER_PASSWORD_CHANGED,
            USER_EMAIL_CHANGE_REQUESTED,
        )


def broker_major_version(server_properties: Mapping[str, object]) -> int | None:
    """RabbitMQ's major version as it announces itself when a connection opens (`product`,
    `version`); None for another broker or a version that does not start with a number."""
    product, version = (_text(server_properties.get(key)) for key in ("product", "version"))
    match = re.match(r"(\d+)\.", version)
    if product != "RabbitMQ" or match is None:
        return None
    return int(match.group(1))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else ""


def dead_letter_queue_arguments(major_version: int | None) -> dict[str, FieldValue]:
    """The dead-letter queue's arguments on RabbitMQ of this major version (None: not known to be
    RabbitMQ 4 or later): its letters are never dropped for being handed back too often."""
    if major_version is not None and major_version >= FIRST_MAJOR_VERSION_WITH_A_DEFAULT_DELIVERY_LIMIT:
        return {**QUORUM, "x-delivery-limit": DEAD_LETTER_DELIVERY_LIMIT}
    return dict(QUORUM)


def delivery_limit_policy_command(queue: str, vhost: str) -> str:
    """The shell command an operator runs to give a quorum queue that already exists the dead-letter
    queue's delivery limit (a policy applies in place; declared arguments never change)."""
    definition = json.dumps({"delivery-limit": DEAD_LETTER_DELIVERY_LIMIT})
    words = ["rabbitmqctl", "set_policy", "-p", vhost, queue, f"^{re.escape(queue)}$", definition]
    return " ".join([*map(shlex.quote, words), "--apply-to", "quorum_queues"])


def _vhost(url_path: str) -> str:
    """The virtual host named by an AMQP URL's path, read the way aiormq reads it."""
    return url_path[1:].replace("%2F", "/") or "/"


async def connect(amqp_url: str) -> AbstractRobustConnection:
    """A connection that reconnects by itself and restores its channels, exchanges and queues."""
    connection = aio_pika.RobustConnection(make_url(amqp_url, client_properties={"connection_name": "userreg"}))
    attempt = asyncio.ensure_future(connection.connect(timeout=CONNECT_TIMEOUT_SECONDS))
    try:
        await asyncio.shield(attempt)
    except asyncio.CancelledError:
        # Cancelled mid-handshake (a service stopping just after it started), `connect_robust` would
        # leave its reconnecting task running for ever, keeping the event loop from closing, and
        # aiormq would leak its socket. Let the attempt end (the timeout bounds it), then close.
        await asyncio.wait({attempt})
        await connection.close()
        raise
    except BaseException:
        await connection.close()
        raise
    return connection


async def declare_events_exchange(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    return await channel.declare_exchange(topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True)


async def declare_mailer_queue(channel: AbstractChannel, topology: Topology) -> AbstractQueue:
    """The mailer's work queue (not yet bound), for a consumer that needs the queue object."""
    return await channel.declare_queue(
        topology.mailer_queue,
        durable=True,
        arguments={
            **QUORUM,
            **SAFE_DEAD_LETTERING,
            "x-delivery-limit": MAILER_DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": topology.mailer_dead_letter_queue,
        },
    )


async def declare_topology(channel: AbstractChannel, topology: Topology) -> AbstractExchange:
    """Declare the events exchange and every durable quorum queue bound to it; returns the exchange."""
    exchange = await declare_events_exchange(channel, topology)
    mailer = await declare_mailer_queue(channel, topology)
    for routing_key in topology.mailer_routing_keys:
        await mailer.bind(exchange, routing_key)
    await declare_dead_letter_queue(channel, topology)
    for delay in topology.mailer_retry_delays:
        # A delay queue has no consumer: a message waits out its TTL, then dead-letters back into
        # the mailer queue through the default exchange.
        await channel.declare_queue(
            topology.mailer_retry_queue(delay),
            durable=True,
            arguments={
                **QUORUM,
                **SAFE_DEAD_LETTERING,
                "x-message-ttl": round(delay * 1000),
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": topology.mailer_queue,
            },
        )
    return exchange


async def declare_dead_letter_queue(channel: AbstractChannel, topology: Topology) -> None:
    """Declare the mailer's dead-letter queue with `dead_letter_queue_arguments` for the broker at
    the other end of `channel`. One declared earlier with other arguments (made on RabbitMQ 3, or
    by an older userreg on RabbitMQ 4) cannot be redeclared: it is used as it is, with a warning
    that says how to raise its delivery limit, so the services start all the same."""
    underlay = await channel.get_underlay_channel()
    connection = underlay.connection
    major_version = broker_major_version(connection.server_properties)
    arguments = dead_letter_queue_arguments(major_version)
    # On a channel of its own: a refused declaration closes its channel, and the caller's robust
    # channel would otherwise repeat the refused declaration after every reconnect.
    own = await connection.channel()
    try:
        await own.queue_declare(topology.mailer_dead_letter_queue, durable=True, arguments=arguments)
    except aio_pika.exceptions.ChannelPreconditionFailed as refusal:
        queue = topology.mailer_dead_letter_queue
        if "x-delivery-limit" in arguments:
            logger.warning(
                "the dead-letter queue %s was declared earlier without a delivery limit of its own (%s); it is "
                "used as it is, but RabbitMQ %s drops a dead letter handed back more than 20 times (each "
                "`userreg dead-letters list` hands them back). Raise its limit, unless a policy already does: %s",
                queue,
                refusal,
                major_version,
                delivery_limit_policy_command(queue, _vhost(connection.url.path)),
            )
        else:
            logger.warning("the dead-letter queue %s exists with other arguments (%s); used as it is", queue, refusal)
    finally:
        if not own.is_closed:
            await own.close()


async def delete_queues(amqp_url: str, names: Iterable[str]) -> None:
    """Delete these queues, whatever they hold; a queue that is not there is no error."""
    connection = await aio_pika.connect(amqp_url)
    try:
        for name in names:
            # A failed delete closes its channel, so each delete gets a channel of its own.
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(name)
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.close()
    finally:
        await connection.close()


async def delete_topology(amqp_url: str, topology: Topology) -> None:
    """Undo `declare_topology`: delete every queue (and the messages in them) and the exchange.
    For tests and benchmarks that made a topology of their own: quorum queues are costly to
    leave behind."""
    await delete_queues(amqp_url, topology.queues)
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.exchange_delete(topology.exchange)
    finally:
        await connection.close()
