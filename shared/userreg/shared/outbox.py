"""The transactional outbox: events are written with the change they report, then relayed.

`enqueue` adds an event to the caller's transaction. `OutboxRelay` runs inside every service that
writes events (supervised: `userreg.shared.runtime.tasks`); any number of replicas may run, each
claiming rows with `FOR UPDATE SKIP LOCKED`.
A row is deleted only after RabbitMQ confirmed the message, so no row keeps a confirmation link
after it is published, and nothing is lost while the broker is away (delivery is at-least-once;
consumers are idempotent on the event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from prometheus_client import Counter
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from userreg.shared.db.engine import asyncpg_dsn
from userreg.shared.db.models import OutboxEvent
from userreg.shared.events import Event
from userreg.shared.logs import log_context, plain_word
from userreg.shared.messaging import Topology, connect, declare_topology
from userreg.shared.runtime.listen import Listener
from userreg.shared.runtime.tasks import INITIAL_BACKOFF_SECONDS, Backoff

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "userreg_outbox"  # the migration's trigger notifies it on every insert
# The application_name of the services that run a relay (their engines connect with it). The
# notification of an insert carries the inserting session's application_name (migration 0009), so
# each relay wakes for its own service's events: confirmation-web's relay sleeps through every
# signup, and registration's also takes what the console and the `userreg` command write.
REGISTRATION_PRODUCER = "userreg-registration"
CONFIRMATION_WEB_PRODUCER = "userreg-confirmation-web"
RELAYING_PRODUCERS = frozenset({REGISTRATION_PRODUCER, CONFIRMATION_WEB_PRODUCER})
PUBLISH_TIMEOUT_SECONDS = 15.0
# Opening the channel and declaring the topology take milliseconds; a life stuck there is restarted.
SETUP_TIMEOUT_SECONDS = 30.0
CLOSE_TIMEOUT_SECONDS = 5.0
# A failed relay round (broker or database away) is tried again within the same life, after
# INITIAL_BACKOFF_SECONDS doubling up to this.
MAX_BACKOFF_SECONDS = 5.0

PUBLISHED = Counter("userreg_outbox_published_total", "Events relayed from the outbox to RabbitMQ", ["type"])
UNROUTED = Counter("userreg_outbox_unrouted_total", "Relayed events no queue was bound for", ["type"])
RELAY_ERRORS = Counter("userreg_outbox_relay_errors_total", "Relay rounds that failed and will be retried")


def enqueue(session: AsyncSession, event: Event) -> None:
    """Add the event to the session's transaction; it is published only if that commits."""
    session.add(outbox_row(event))


def outbox_row(event: Event) -> OutboxEvent:
    """The event's outbox row, for a caller that writes it in its own statement (same transaction)."""
    return OutboxEvent(event_id=event.id, routing_key=event.type, payload=event.to_json_dict())


def to_message(row: OutboxEvent) -> aio_pika.Message:
    """The row as it was written. The relay does not interpret events: a row it could not parse
    (say, a newer event version written by a newer replica during a rolling upgrade) must not hold
    up every event behind it."""
    payload = row.payload
    return aio_pika.Message(
        body=json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(),
        message_id=str(row.event_id),
        type=row.routing_key,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=row.created_at,
        headers={"x-app-id": str(payload.get("appId", "")), "x-event-version": payload.get("version", 0)},
    )


class OutboxRelay:
    """Publishes committed outbox rows, woken by NOTIFY right after a commit or by a timer:

    relay = OutboxRelay(engine, amqp_url, topology)
    async with Supervised("outbox-relay", relay.run, ready=lambda: relay.connected):
        …
    """

    def __init__(
        self,
        engine: AsyncEngine,
        amqp_url: str,
        topology: Topology,
        *,
        batch_size: int = 200,
        poll_seconds: float = 2.0,
        linger_seconds: float = 0.0,
        listen_dsn: str | None = None,
        producer: str | None = None,
        unowned_too: bool = False,
    ) -> None:
        """`linger_seconds`: after publishing a batch, wait this long before claiming the next one,
        so that under a steady load events leave in fewer, larger batches (each batch costs a
        transaction and several round trips); the first event after a quiet spell leaves at once.
        `listen_dsn`: where its LISTEN connection goes (`session_dsn(settings)`: past a
        transaction pooler); by default the engine's database. `producer`: the application_name
        whose inserts wake it (`wakes_for`), and with `unowned_too` those of no relaying service;
        None: every insert. Its timer (`poll_seconds`) still takes any row that waits."""
        self._engine = engine
        self._listen_dsn = listen_dsn or asyncpg_dsn(engine.url.render_as_string(hide_password=False))
        self._producer = producer
        self._unowned_too = unowned_too
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._amqp_url = amqp_url
        self._topology = topology
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._linger_seconds = linger_seconds
        self._wake = asyncio.Event()
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None

    @property
    def connected(self) -> bool:
        """True only while the relay is relaying through an open channel to RabbitMQ: False before
        it first connected, while the broker is away (until the robust connection has reopened the
        channel) and after it stopped. Readiness reads it, rather than opening a connection per probe."""
        connection, channel = self._connection, self._channel
        return (
            connection is not None and channel is not None and connection.connected.is_set() and not channel.is_closed
        )

    async def run(self) -> None:
        """One life of the relay: connect, open a channel, declare the topology, then relay until
        cancelled. The robust connection rides out broker restarts and a failed round is tried
        again; anything else that fails (connecting, the channel, a declaration the broker
        refuses) ends the life with its exception: run it under `Supervised`, which starts a
        new one after a back-off."""
        connection = await connect(self._amqp_url)
        try:
            async with asyncio.timeout(SETUP_TIMEOUT_SECONDS):
                channel = await connection.channel(publisher_confirms=True, on_return_raises=False)
                channel.return_callbacks.add(self._on_return)
                exchange = await declare_topology(channel, self._topology)
            self._connection, self._channel = connection, channel
            listener = Listener(
                self._listen_dsn,
                NOTIFY_CHANNEL,
                self._notified,
                on_connect=self._wake.set,  # catch up on what was committed meanwhile
                name="outbox-listen",
            )
            listening = asyncio.create_task(listener.run(), name="outbox-listen")
            try:
                await self._relay_forever(exchange)
            finally:
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
        finally:
            self._connection = self._channel = None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_SECONDS)

    async def _relay_forever(self, exchange: AbstractExchange) -> None:
        backoff = Backoff(INITIAL_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS)
        while True:
            try:
                published = await self.relay_batch(exchange)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # broker or database away: rows stay, try again later
                RELAY_ERRORS.inc()
                logger.warning(
                    "outbox relay round failed (%s: %s); retrying in %.1fs",
                    type(error).__name__,
                    error,
                    backoff.seconds,
                )
                await backoff.wait()
                continue
            if published == self._batch_size:
                continue  # more may be waiting
            if published and self._linger_seconds:
                await asyncio.sleep(self._linger_seconds)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_seconds)
            self._wake.clear()

    async def relay_batch(self, exchange: AbstractExchange) -> int:
        """Publish up to one batch of committed rows and delete them; returns how many."""
        async with self._sessions() as session, session.begin():
            rows = (
                await session.scalars(
                    select(OutboxEvent)
                    .order_by(OutboxEvent.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            # Publish the whole batch at once and wait for every broker confirm before deleting.
            await asyncio.gather(
                *(
                    exchange.publish(
                        to_message(row), routing_key=row.routing_key, mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS
                    )
                    for row in rows
                )
            )
            await session.execute(delete(OutboxEvent).where(OutboxEvent.id.in_([row.id for row in rows])))
        for row in rows:
            PUBLISHED.labels(row.routing_key).inc()
        logger.debug("relayed %d outbox events", len(rows))
        return len(rows)

    def _notified(self, payload: str) -> None:
        if wakes_for(payload, self._producer, unowned_too=self._unowned_too):
            self._wake.set()

    def _on_return(self, _channel, message) -> None:
        UNROUTED.labels(message.type or "unknown").inc()
        with log_context(event_id=plain_word(message.message_id)):
            logger.info("event %s (%s) had no queue bound for it", message.message_id, message.type)


def wakes_for(payload: str, producer: str | None, *, unowned_too: bool) -> bool:
    """Whether a relay of `producer` wakes for an insert notified with `payload` (the inserting
    session's application_name)."""
    if producer is None or payload == producer:
        return True
    return unowned_too and payload not in RELAYING_PRODUCERS
