"""The RabbitMQ topology of userreg, declared the same way by every service (idempotent).

Queues that hold work are declared here, by everyone, so that an event published before its
consumer ever started is kept rather than dropped as unroutable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection
from aio_pika.connection import make_url
from userreg.shared.events import (
    USER_CONFIRMATION_REQUESTED,
    USER_PASSWORD_CHANGED,
    USER_PASSWORD_RESET_REQUESTED,
    USER_REGISTERED,
)
from userreg.shared.settings import Settings

CONNECT_TIMEOUT_SECONDS = 10.0
QUORUM = {"x-queue-type": "quorum"}
# Quorum queues dead-letter at-most-once unless told otherwise; these two make it at-least-once.
SAFE_DEAD_LETTERING = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
# Retry delays of the mailer, in seconds: transient SMTP failures wait in these queues.
MAILER_RETRY_DELAYS: tuple[float, ...] = (5, 30, 300, 1800, 7200)
# A poison message is dead-lettered after this many deliveries, so it can never loop forever.
MAILER_DELIVERY_LIMIT = 20


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
        return (self.mailer_queue, self.mailer_dead_letter_queue,
                *(self.mailer_retry_queue(delay) for delay in self.mailer_retry_delays))

    @property
    def mailer_routing_keys(self) -> tuple[str, ...]:
        return (USER_REGISTERED, USER_CONFIRMATION_REQUESTED, USER_PASSWORD_RESET_REQUESTED, USER_PASSWORD_CHANGED)


async def connect(amqp_url: str) -> AbstractRobustConnection:
    """A connection that reconnects by itself and restores its channels, exchanges and queues."""
    connection = aio_pika.RobustConnection(
        make_url(amqp_url, client_properties={"connection_name": "userreg"}))
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
    await channel.declare_queue(topology.mailer_dead_letter_queue, durable=True, arguments=QUORUM)
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
