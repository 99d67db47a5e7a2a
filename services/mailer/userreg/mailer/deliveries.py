"""The mailer's reads and writes in PostgreSQL: the app an event belongs to, and the delivery
records that make every email go out at most once however often its event arrives."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from userreg.mailer.policy import TransientFailure
from userreg.shared.db.mail import DeliveryStatus, MailDelivery
from userreg.shared.db.models import App

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

# What a database that is away, restarting or overloaded raises (not what a bug raises).
DATABASE_ERRORS = (DBAPIError, PoolTimeout, OSError, asyncio.TimeoutError)
# Recording that the SMTP server accepted an email: a few quick tries while the event waits, then
# in the background while the event is settled anyway (the email went out; sending it again would
# be the worse mistake), until the claim would run out.
MARK_SENT_RETRIES = (0.1, 0.5, 1.0)
MARK_SENT_BACKGROUND_PAUSE = 5.0


@dataclass(frozen=True)
class AppInfo:
    app_id: str
    name: str
    welcome_email_enabled: bool


async def load_app(session: AsyncSession, app_id: str) -> AppInfo | None:
    """The app an event names. Events carry the exact appId the services wrote, so this is a
    primary-key lookup (unlike `shared.apps.get_app`, which accepts a client's spelling)."""
    row = (await session.execute(
        select(App.app_id, App.name, App.welcome_email_enabled).where(App.app_id == app_id)
    )).first()
    return None if row is None else AppInfo(*row)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming an event's emails: ours to send now, sent before, or being sent
    right now by another mailer (whose claim has not expired)."""

    claimed: tuple[str, ...]
    already_sent: tuple[str, ...]
    busy: tuple[str, ...]


class Batcher(Generic[T, R]):
    """Runs single calls as batches: calls made while a batch is in flight (a database round trip)
    wait and go together as the next one. Under load one statement serves many emails; alone, a
    call goes out at once. `run` gets the items and returns one result per item, in order."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], max_size: int = 500) -> None:
        self._run = run
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                await asyncio.sleep(0)  # calls made in this same turn of the loop join the batch
                batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size:]
                batch = [(item, future) for item, future in batch if not future.cancelled()]
                if not batch:
                    continue
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._flusher = None
            # Cancelled mid-batch (shutdown): nobody may wait forever.
            for _, future in batch + self._pending:
                if not future.done():
                    future.cancel()


# Claims many emails in one statement. A row can be claimed when it is new, when its last attempt
# failed, or when its claimant fell silent (claim expired); never once SENT.
_CLAIM = text("""
    INSERT INTO mail_deliveries (event_id, template, app_id, status, attempts, claimed_by, claimed_until)
    SELECT wanted.event_id, wanted.template, wanted.app_id, 'SENDING', 1, :owner,
           now() + make_interval(secs => :claim_seconds)
    FROM unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[]), CAST(:app_ids AS text[]))
         AS wanted(event_id, template, app_id)
    ON CONFLICT (event_id, template) DO UPDATE
    SET status = 'SENDING', claimed_by = excluded.claimed_by, claimed_until = excluded.claimed_until,
        attempts = mail_deliveries.attempts + 1
    WHERE mail_deliveries.status = 'FAILED'
       OR (mail_deliveries.status = 'SENDING' AND mail_deliveries.claimed_until < now())
    RETURNING CAST(event_id AS text), template
""")
_STATUSES = text("""
    SELECT CAST(d.event_id AS text), d.template, CAST(d.status AS text) FROM mail_deliveries AS d
    JOIN unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[])) AS wanted(event_id, template)
      ON d.event_id = wanted.event_id AND d.template = wanted.template
""")
_MARK_SENT = text("""
    UPDATE mail_deliveries AS d
    SET status = 'SENT', sent_at = now(), claimed_until = NULL, last_error = NULL
    FROM unnest(CAST(:event_ids AS uuid[]), CAST(:templates AS text[])) AS sent(event_id, template)
    WHERE d.event_id = sent.event_id AND d.template = sent.template
""")
_RELEASE = (
    update(MailDelivery)
    .where(MailDelivery.event_id == bindparam("b_event_id"),
           MailDelivery.template.in_(bindparam("b_templates", expanding=True)),
           MailDelivery.status == DeliveryStatus.SENDING, MailDelivery.claimed_by == bindparam("b_owner"))
    .values(status=DeliveryStatus.FAILED, claimed_until=None, last_error=bindparam("b_reason"))
)

_Key = tuple[str, str]  # (event id, template)


class DeliveryLog:
    """Delivery records in `mail_deliveries`, one per (event id, template).

    A mailer claims an email before sending it; the claim lasts `claim_seconds`, longer than one
    send can take, so a live claimant never loses it while a crashed one's claim runs out. The
    database's clock decides expiry: the same for every replica. Claims and "sent" records of
    concurrent emails are batched into one statement each.
    """

    def __init__(self, engine: AsyncEngine, owner: str, claim_seconds: float) -> None:
        # Every statement here is atomic on its own: an AUTOCOMMIT engine saves BEGIN/COMMIT round trips.
        self._engine = engine
        self._owner = owner[:100]
        self._claim_seconds = claim_seconds
        self._claims: Batcher[tuple[str, str, tuple[str, ...]], Claim] = Batcher(self._claim_batch)
        self._sent: Batcher[_Key, None] = Batcher(self._mark_sent_batch)
        self._recording: set[asyncio.Task] = set()

    async def claim(self, event_id: str, app_id: str, templates: tuple[str, ...]) -> Claim:
        try:
            return await self._claims((event_id, app_id, templates))
        except DATABASE_ERRORS as error:
            raise TransientFailure("database",
                                   f"cannot claim the delivery: {type(error).__name__}") from error

    async def _claim_batch(self, requests: list[tuple[str, str, tuple[str, ...]]]) -> list[Claim]:
        # Two copies of one event in the same batch: the first claims, the second finds it busy
        # (one statement must not touch a row twice). Sorted, so that concurrent batches of several
        # mailers take their row locks in the same order.
        first: dict[_Key, str] = {}
        for event_id, app_id, templates in requests:
            for template in templates:
                first.setdefault((event_id, template), app_id)
        keys = sorted(first)
        async with self._engine.connect() as connection:
            claimed = set((await connection.execute(_CLAIM, {
                "owner": self._owner, "claim_seconds": self._claim_seconds,
                "event_ids": [event_id for event_id, _ in keys],
                "templates": [template for _, template in keys],
                "app_ids": [first[key] for key in keys],
            })).tuples().all())
            unclaimed = [key for key in keys if key not in claimed]
            statuses: dict[_Key, str] = {}
            if unclaimed:
                found = await connection.execute(_STATUSES, {
                    "event_ids": [event_id for event_id, _ in unclaimed],
                    "templates": [template for _, template in unclaimed]})
                statuses = {(event_id, template): status for event_id, template, status in found.tuples()}
        results = []
        for event_id, _, templates in requests:
            ours: list[str] = []
            sent: list[str] = []
            busy: list[str] = []
            for template in templates:
                key = (event_id, template)
                if key in claimed:
                    claimed.remove(key)  # a second copy of the event in this batch finds it busy
                    ours.append(template)
                elif statuses.get(key) == DeliveryStatus.SENT.value:
                    sent.append(template)
                else:
                    busy.append(template)
            results.append(Claim(claimed=tuple(ours), already_sent=tuple(sent), busy=tuple(busy)))
        return results

    async def mark_sent(self, event_id: str, template: str) -> None:
        """Record that the SMTP server accepted the email. Never fails: when the database stays away,
        recording goes on in the background (while the claim keeps other mailers off the email)."""
        for pause in MARK_SENT_RETRIES:
            try:
                await self._sent((event_id, template))
                return
            except DATABASE_ERRORS as error:
                logger.warning("recording the sent email %s/%s failed (%s); retrying in %ss",
                               event_id, template, type(error).__name__, pause)
                await asyncio.sleep(pause)
        task = asyncio.create_task(self._record_later(event_id, template))
        self._recording.add(task)
        task.add_done_callback(self._recording.discard)

    async def _record_later(self, event_id: str, template: str) -> None:
        deadline = time.monotonic() + self._claim_seconds
        while True:
            try:
                await self._sent((event_id, template))
                logger.info("the sent email %s/%s is recorded at last", event_id, template)
                return
            except DATABASE_ERRORS as error:
                if time.monotonic() + MARK_SENT_BACKGROUND_PAUSE > deadline:
                    logger.error("the sent email %s/%s could not be recorded (%s); a redelivered copy of "
                                 "its event may send it again", event_id, template, type(error).__name__)
                    return
            await asyncio.sleep(MARK_SENT_BACKGROUND_PAUSE)

    async def close(self, grace: float = 5.0) -> None:
        """Give records still being retried a last chance, then stop."""
        if self._recording:
            _, late = await asyncio.wait(set(self._recording), timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)

    async def _mark_sent_batch(self, keys: list[_Key]) -> list[None]:
        ordered = sorted(set(keys))
        async with self._engine.connect() as connection:
            await connection.execute(_MARK_SENT, {"event_ids": [event_id for event_id, _ in ordered],
                                                  "templates": [template for _, template in ordered]})
        return [None] * len(keys)

    async def release(self, event_id: str, templates: tuple[str, ...], reason: str) -> None:
        """Give up our claim after a failed attempt, so the next delivery of the event may claim it
        at once. Best effort: if this fails too, the claim simply expires."""
        if not templates:
            return
        try:
            async with self._engine.connect() as connection:
                await connection.execute(_RELEASE, {"b_event_id": event_id, "b_templates": list(templates),
                                                    "b_owner": self._owner, "b_reason": reason})
        except DATABASE_ERRORS as error:
            logger.warning("cannot release the claim on %s (%s); it expires by itself",
                           event_id, type(error).__name__)
