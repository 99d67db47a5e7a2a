"""Deliveries in the console (services/console/README.md): emails with their state, reason and recipient (the
mailer's delivery records and dead letters, `repository.deliveries` and `rules.deliveries`), of
every app or one, in one state or any, a page at a time, newest first; an app's dead letters
waiting in the dead-letter queue with their reasons, and replaying one or all of them, through the
mailer's own functions (`mailer.operations`, as `userreg dead-letters`). A replay's audit entry is
written right after it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import aio_pika.exceptions
from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import apps as app_repository
from userreg.console.repository import deliveries as repository
from userreg.console.rules.deliveries import PAGE_SIZE, Delivery, DeliveryQuery, delivery_of
from userreg.shared import audit
from userreg.shared.apps import get_app
from userreg.shared.db.models import App
from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

BROKER_ERRORS = (OSError, asyncio.TimeoutError, aio_pika.exceptions.AMQPError)
# How many queued dead letters are looked at (of every app) to find an app's.
DEAD_LETTER_LIMIT = 1000
# mailer.operations.list_dead_letters and replay.
ListDeadLetters = Callable[..., Awaitable[list[dict[str, Any]]]]
Replay = Callable[..., Awaitable[int]]


class BrokerUnavailable(RuntimeError):
    """RabbitMQ could not be asked (the message says why)."""


@dataclass(frozen=True)
class DeadLetterView:
    event_id: str
    event_type: str | None
    reason: str
    attempts: int
    dead_lettered_at: datetime
    times_dead_lettered: int
    recipient: str | None


@dataclass(frozen=True)
class Emails:
    """One page of emails: what was asked, the rows, whether there are older ones, and every app's
    name by its appId (for the filter, and to name each row's app)."""

    query: DeliveryQuery
    rows: list[Delivery]
    has_older: bool
    apps: dict[str, str]


@dataclass(frozen=True)
class DeliveriesPage:
    app: App
    emails: Emails
    # None when RabbitMQ could not be asked (`broker_error` says why).
    dead_letters: list[DeadLetterView] | None
    broker_error: str | None


def dead_letter_view(letter: dict[str, Any]) -> DeadLetterView:
    user = (letter.get("payload") or {}).get("user") or {}
    return DeadLetterView(
        event_id=letter["eventId"],
        event_type=letter.get("type"),
        reason=letter["reason"],
        attempts=letter["attempts"],
        dead_lettered_at=datetime.fromisoformat(letter["deadLetteredAt"]),
        times_dead_lettered=letter["timesDeadLettered"],
        recipient=user.get("email") if isinstance(user, dict) else None,
    )


class Deliveries:
    def __init__(
        self, sessions: async_sessionmaker, settings: Settings, list_dead_letters: ListDeadLetters, replay: Replay
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._list_dead_letters = list_dead_letters
        self._replay = replay

    async def emails(self, query: DeliveryQuery) -> Emails:
        """The page of emails `query` asks for."""
        async with self._sessions() as session:
            names = await app_repository.app_names(session)
            rows = await repository.deliveries(session, query)
        return Emails(query, [delivery_of(row) for row in rows[:PAGE_SIZE]], len(rows) > PAGE_SIZE, names)

    async def page(self, app_id: str, query: DeliveryQuery) -> DeliveriesPage:
        """One app's page: its emails as `query` asks (its app is this app), and its dead letters."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
        emails = await self.emails(replace(query, app_id=app.app_id))
        try:
            letters, error = [dead_letter_view(letter) for letter in await self._queued(app)], None
        except BrokerUnavailable as unavailable:
            letters, error = None, str(unavailable)
        return DeliveriesPage(app, emails, letters, error)

    async def replay(self, actor: str, app_id: str, event_id: str | None) -> int:
        """Send the app's dead letter with this event id (None: all of the app's) back to the
        mailer with a fresh set of retries; how many went. `BrokerUnavailable`."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
        queued = [letter["eventId"] for letter in await self._queued(app)]
        wanted = queued if event_id is None else [event_id] if event_id in queued else []
        if not wanted:
            return 0
        try:
            replayed = await self._replay(self._settings, wanted)
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"RabbitMQ cannot be reached: {type(error).__name__}") from error
        async with self._sessions.begin() as session:
            audit.record(session, actor, "dead-letters.replay", app.app_id, eventIds=wanted[:100], replayed=replayed)
        return replayed

    async def _queued(self, app: App) -> list[dict[str, Any]]:
        """The app's dead letters waiting in the queue, oldest first."""
        try:
            letters = await self._list_dead_letters(self._settings, limit=DEAD_LETTER_LIMIT)
        except BROKER_ERRORS as error:
            logger.warning("cannot list the dead letters: %s", type(error).__name__)
            raise BrokerUnavailable(f"RabbitMQ cannot be reached: {type(error).__name__}") from error
        return [letter for letter in letters if letter.get("appId") == app.app_id]
