"""The AMQP edge of the mailer: takes events from the mailer queue, lets the `Deliverer` (the
service layer) send their emails, and settles each message only once its fate is safe with the
broker (the copies it publishes are `envelope.py`'s):

* sent (or already sent before)        → ack
* transient failure                    → copy into the delay queue for the attempt, confirmed → ack
* permanent failure / retries used up  → copy into the dead-letter queue, confirmed, recorded → ack
* another mailer is sending it now     → copy into a delay queue (not counted as an attempt) → ack
* the database is away                 → the same: deferred, never counted, never dead-lettered
* anything unexpected                  → rejected back into the queue; the quorum queue's delivery
                                         limit (and our own redelivery check) bound such loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from userreg.mailer import envelope, metrics
from userreg.mailer.envelope import Outgoing, decode_event
from userreg.mailer.rules.policy import (
    DATABASE_DEFERRAL_LIMIT,
    PermanentFailure,
    TransientFailure,
    busy_deferral_limit,
    counts_as_attempt,
    deferral_delay,
    retry_delay,
)
from userreg.mailer.service import Deliverer
from userreg.shared.db.errors import RETRYABLE_DATABASE_ERRORS
from userreg.shared.logs import log_context, plain_word
from userreg.shared.messaging import (
    MAILER_DELIVERY_LIMIT,
    Topology,
    connect,
    declare_mailer_queue,
    declare_topology,
)
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

# A message handed out this often without being settled has crashed or stalled mailers: park it
# ourselves, with a reason, well before the broker's own delivery limit drops it in the queue bare.
POISON_REDELIVERIES = MAILER_DELIVERY_LIMIT // 2
# After an unexpected error, wait a moment before the message goes back, so a bug cannot spin.
UNEXPECTED_ERROR_PAUSE = 1.0
# Opening the channel and declaring the topology take milliseconds; a life stuck there is restarted.
SETUP_TIMEOUT_SECONDS = 30.0
CLOSE_TIMEOUT_SECONDS = 5.0


# What settling a message raises when its channel or connection is gone.
_SETTLING_ERRORS = (aio_pika.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError, ConnectionError)


class _Unexpected(Exception):
    """A bug or an unforeseen failure while handling a message (already logged)."""


class MailConsumer:
    """Consumes the mailer queue until `stop()`. Its connection rides out broker restarts
    (connect_robust); whatever else fails ends `run()`, which `Supervised` starts again."""

    def __init__(self, settings: Settings, *, deliverer: Deliverer, topology: Topology | None = None) -> None:
        self._settings = settings
        self._deliverer = deliverer
        self._topology = topology or Topology.from_settings(settings)
        self._delays = self._topology.mailer_retry_delays
        self._channel: AbstractChannel | None = None
        self._connection: AbstractRobustConnection | None = None
        self._inflight: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._consuming = False
        # How long the messages in hand may take to finish once stopping (their sends included).
        self.drain_seconds = 2 * settings.smtp_timeout + 5

    @property
    def ready(self) -> bool:
        """True only while consuming through an open channel to RabbitMQ: False before the first
        connection, while the broker is away (until the robust connection has reopened the channel
        and its consumer) and once stopping. Readiness reads it, rather than opening a connection."""
        connection, channel = self._connection, self._channel
        return (
            self._consuming
            and connection is not None
            and channel is not None
            and connection.connected.is_set()
            and not channel.is_closed
        )

    async def run(self) -> None:
        """One life of the consumer: connect, open a channel, set its prefetch, declare the
        topology, consume until `stop()`; then finish the messages in hand and close the connection.
        A step that fails (or takes longer than `SETUP_TIMEOUT_SECONDS`) ends the life with its
        exception: run it under `Supervised`, which starts a new one after a back-off (the broker
        hands out again whatever a failed life had not settled)."""
        if self._stopping.is_set():
            return
        connection = await connect(self._settings.amqp_dsn)
        self._connection = connection
        try:
            async with asyncio.timeout(SETUP_TIMEOUT_SECONDS):
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                await channel.set_qos(prefetch_count=self._settings.mailer_prefetch)
                await declare_topology(channel, self._topology)
                queue = await declare_mailer_queue(channel, self._topology)
            self._channel = channel
            if self._stopping.is_set():
                return  # stopped while setting up: take no message
            consumer_tag = await queue.consume(self._on_message, timeout=SETUP_TIMEOUT_SECONDS)
            self._consuming = True
            logger.info("mailer consuming %s (prefetch %d)", queue.name, self._settings.mailer_prefetch)
            await self._stopping.wait()
            self._consuming = False
            with contextlib.suppress(Exception):  # the broker may be gone: nothing more comes then anyway
                await queue.cancel(consumer_tag)
            await self._drain()
        finally:
            self._consuming = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        """Ask `run()` to stop consuming, finish the messages in hand (`_drain`) and return."""
        self._stopping.set()

    async def _drain(self) -> None:
        """Let the messages already handed to us finish (their sends included), within reason."""
        await asyncio.sleep(0)  # deliveries that arrived with the cancel start their tasks now
        if not self._inflight:
            return
        logger.info("mailer finishing %d message(s) in hand", len(self._inflight))
        _, late = await asyncio.wait(set(self._inflight), timeout=self.drain_seconds)
        for task in late:
            task.cancel()  # unsettled: the broker hands them out again
        if late:
            await asyncio.wait(late)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            async with message.process(requeue=True, ignore_processed=True):
                with log_context(
                    event_id=plain_word(message.message_id), app_id=plain_word((message.headers or {}).get("x-app-id"))
                ):
                    await self._handle_or_pause(message)
        except _Unexpected:
            pass  # logged; the message went back into the queue
        except _SETTLING_ERRORS as error:
            # Its fate is safe elsewhere (sent and recorded, or copied to a delay or dead-letter
            # queue); unsettled, the broker hands it out again and the delivery record says "sent".
            logger.warning("message %s could not be settled (%s: %s)", message.message_id, type(error).__name__, error)
        finally:
            self._inflight.discard(task)

    async def _handle_or_pause(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._handle(message)
        except Exception as error:
            logger.exception("unexpected error handling message %s; it goes back to the queue", message.message_id)
            await asyncio.sleep(UNEXPECTED_ERROR_PAUSE)
            raise _Unexpected() from error

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        failed_attempts = envelope.failed_attempts(message)
        redeliveries = envelope.redeliveries(message)
        if redeliveries >= POISON_REDELIVERIES:
            await self._dead_letter(
                message,
                PermanentFailure("poison", f"handed out {redeliveries + 1} times without being settled"),
                failed_attempts,
            )
            return
        try:
            event = decode_event(message.body)
            outcome = await self._deliverer.deliver(event)
        except PermanentFailure as failure:
            await self._dead_letter(message, failure, failed_attempts + 1)
            return
        except TransientFailure as failure:
            if counts_as_attempt(failure):
                await self._retry(message, failure, failed_attempts + 1)
                return
            # The database is away: nothing is wrong with the email or the SMTP server. Waited out
            # for as long as it takes, never counted against the email's retries.
            delay = await self._defer(message, DATABASE_DEFERRAL_LIMIT)
            metrics.RETRIED.labels(failure.kind).inc()
            logger.warning(
                "message %s: %s; looking again in %ss (not counted as an attempt)",
                message.message_id,
                failure.reason,
                delay,
            )
            return
        if outcome.busy:
            # Held by a live mailer (done in moments) or a crashed one (its claim lapses within a
            # lease): looked at again every few seconds, never pushed up the retry ladder.
            delay = await self._defer(message, busy_deferral_limit(self._settings.mailer_claim_seconds))
            metrics.DEFERRED.inc()
            logger.info(
                "event %s: %s being sent by another mailer; looking again in %ss",
                event.id,
                ", ".join(outcome.busy),
                delay,
            )
        elif outcome.sent:
            metrics.EVENTS.labels("sent").inc()
        elif outcome.already_sent:
            metrics.EVENTS.labels("duplicate").inc()
        else:
            metrics.EVENTS.labels("nothing_to_send").inc()

    async def _retry(self, message: AbstractIncomingMessage, failure: TransientFailure, failed_attempts: int) -> None:
        delay = retry_delay(failed_attempts, self._delays)
        if delay is None:
            exhausted = PermanentFailure(
                failure.kind, f"gave up after {failed_attempts} attempts; last error: {failure.reason}"
            )
            await self._dead_letter(message, exhausted, failed_attempts)
            return
        await self._publish(
            envelope.retry(message, self._topology, delay=delay, attempts=failed_attempts, last_error=failure.reason)
        )
        metrics.RETRIED.labels(failure.kind).inc()
        metrics.EVENTS.labels("retried").inc()
        logger.warning(
            "message %s: attempt %d failed (%s); retrying in %ss",
            message.message_id,
            failed_attempts,
            failure.reason,
            delay,
        )

    async def _defer(self, message: AbstractIncomingMessage, longest: float) -> float:
        """Put the message into a delay queue without counting an attempt (`policy.deferral_delay`:
        growing up to `longest`, never running out); returns the delay."""
        delay = deferral_delay(envelope.deferrals(message), self._delays, longest)
        await self._publish(envelope.deferral(message, self._topology, delay=delay))
        metrics.EVENTS.labels("deferred").inc()
        return delay

    async def _publish(self, outgoing: Outgoing) -> None:
        """Publish a copy of a message (confirmed by the broker); the caller acknowledges the
        original afterwards."""
        assert self._channel is not None
        await self._channel.default_exchange.publish(
            outgoing.message, routing_key=outgoing.queue, mandatory=True, timeout=envelope.PUBLISH_TIMEOUT_SECONDS
        )

    async def _dead_letter(self, message: AbstractIncomingMessage, failure: PermanentFailure, attempts: int) -> None:
        parked = envelope.dead_letter(
            message, self._topology, kind=failure.kind, reason=failure.reason, attempts=attempts
        )
        await self._publish(parked)
        metrics.DEAD_LETTERED.labels(failure.kind).inc()
        metrics.EVENTS.labels("dead_lettered").inc()
        logger.error(
            "message %s dead-lettered after %d attempt(s): %s", parked.message.message_id, attempts, failure.reason
        )
        try:
            await self._deliverer.record_dead_letter(
                envelope.dead_letter_record(parked.message, reason=failure.reason, attempts=attempts)
            )
        except RETRYABLE_DATABASE_ERRORS as error:
            # The queue has it, which is what replay needs; listing records it later.
            logger.warning(
                "dead letter %s is queued but not recorded (%s)", parked.message.message_id, type(error).__name__
            )
