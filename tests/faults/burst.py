"""What a fault test does to the system and how it counts: a burst of registrations by many clients
at once, and the tally of users against the emails the SMTP server received."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from tests.support.api import PASSWORD, Api
from tests.support.polling import eventually
from tests.support.system import System, unique_address
from userreg.shared.db import ConfirmationToken, User
from userreg.shared.db.mail import DeliveryStatus, MailDelivery

# Small by default (CI); `USERREG_FULL_FAULTS=1` (make test-full) runs the full 1,000 per fault.
FULL = os.environ.get("USERREG_FULL_FAULTS") == "1"
REGISTRATIONS = 1000 if FULL else 150
CLIENTS = 16
# A paced burst lasts this long, so a fault strikes while registrations are still coming in.
PACED_SECONDS = max(4.0, REGISTRATIONS / 80)
# What a client that lost its connection does: try again shortly, for a while.
CLIENT_RETRY_SECONDS = 0.2
CLIENT_GIVE_UP_SECONDS = 60.0


class RoundRobinApi(Api):
    """An `Api` that sends each request to the next of several base URLs (replicas of one service),
    as a load balancer would: a client that tries again after a broken connection reaches the next."""

    def __init__(self, http: aiohttp.ClientSession, base_urls: list[str]) -> None:
        super().__init__(http, base_urls[0])
        self._base_urls = itertools.cycle([url.rstrip("/") for url in base_urls])

    def url(self, app, path: str, *, server: bool = False) -> str:
        self.base_url = next(self._base_urls)
        return super().url(app, path, server=server)


@dataclass
class Attempt:
    address: str
    status: int | None = None
    code: int | None = None
    envelope: bool = False
    errors: list[str] = field(default_factory=list)
    tries: int = 0


class Burst:
    """`count` registrations to `app` by `CLIENTS` concurrent clients, paced over `seconds` so a
    fault can strike while they are under way. With `retry`, a client whose connection failed (the
    service was killed) tries again until it gets an answer; without, the first answer counts."""

    def __init__(
        self, api: Api, app, count: int = REGISTRATIONS, *, label: str, seconds: float = 0.0, retry: bool = False
    ) -> None:
        self.api = api
        self.app = app
        self.attempts = [Attempt(unique_address(label)) for _ in range(count)]
        self.seconds = seconds
        self.retry = retry
        self.finished = 0
        self._task: asyncio.Task | None = None

    @property
    def count(self) -> int:
        return len(self.attempts)

    def start(self) -> Burst:
        self._task = asyncio.create_task(self._run())
        return self

    async def done(self, timeout: float = 300.0) -> None:
        assert self._task is not None
        await asyncio.wait_for(self._task, timeout)

    async def reached(self, fraction: float, timeout: float = 120.0) -> None:
        """Wait until this fraction of the registrations has been answered."""
        wanted = int(self.count * fraction)
        await eventually(
            lambda: self.finished >= wanted or (self._task is not None and self._task.done()),
            timeout=timeout,
            interval=0.02,
            what=f"{wanted} registrations",
        )

    async def _run(self) -> None:
        clients = asyncio.Semaphore(CLIENTS)
        started = time.monotonic()

        async def one(index: int, attempt: Attempt) -> None:
            if self.seconds:
                # Paced: the i-th registration does not start before its share of the time.
                await asyncio.sleep(max(0.0, started + self.seconds * index / self.count - time.monotonic()))
            async with clients:
                await self._register(attempt)
            self.finished += 1

        await asyncio.gather(*(one(index, attempt) for index, attempt in enumerate(self.attempts)))

    async def _register(self, attempt: Attempt) -> None:
        give_up = time.monotonic() + CLIENT_GIVE_UP_SECONDS
        while True:
            attempt.tries += 1
            try:
                answer = await self.api.register(self.app, {"email": attempt.address, "password": PASSWORD})
            except (TimeoutError, aiohttp.ClientConnectionError) as error:
                attempt.errors.append(type(error).__name__)
                if self.retry and time.monotonic() < give_up:
                    await asyncio.sleep(CLIENT_RETRY_SECONDS)
                    continue
                return
            attempt.status, attempt.code, attempt.envelope = answer.status, answer.code, answer.is_envelope()
            return

    def answered(self, status: int, code: int | None = None) -> list[Attempt]:
        return [a for a in self.attempts if a.status == status and (code is None or a.code == code)]

    def statuses(self) -> dict[str, int]:
        """How the registrations were answered: {"200": 140, "503/3021": 10, "no answer": 0, …}."""
        return dict(
            Counter(
                "no answer" if a.status is None else str(a.status) if a.code is None else f"{a.status}/{a.code}"
                for a in self.attempts
            )
        )


@dataclass(frozen=True)
class Tally:
    registered: int
    emailed: int
    lost: int
    duplicated: int
    unsettled_deliveries: int
    last_email_at: datetime | None

    @property
    def settled(self) -> bool:
        """Every user has an email and no email is being sent or waiting for another try: nothing
        more can arrive (a delivery recorded as sent is never sent again)."""
        return self.lost == 0 and self.unsettled_deliveries == 0


async def users_of(sessions: async_sessionmaker, app_id: str) -> list[str]:
    """The identity (the email address, lower-cased) of every user of the app."""
    async with sessions() as session:
        return list(await session.scalars(select(User.identity_key).where(User.app_id == app_id)))


async def users_without_link(sessions: async_sessionmaker, app_id: str) -> int:
    """Users with no confirmation link: a registration that was half done."""
    async with sessions() as session:
        linked = select(ConfirmationToken.user_id).where(ConfirmationToken.user_id == User.object_id).exists()
        return await session.scalar(select(func.count()).select_from(User).where(User.app_id == app_id, ~linked))


async def tally(system: System, sessions: async_sessionmaker, app_id: str) -> Tally:
    users = await users_of(sessions, app_id)
    arrivals = system.arrivals(users)
    per_user = Counter(recipient for recipient, _ in arrivals)
    async with sessions() as session:
        unsettled = await session.scalar(
            select(func.count())
            .select_from(MailDelivery)
            .where(MailDelivery.app_id == app_id, MailDelivery.status != DeliveryStatus.SENT)
        )
    emailed = sum(1 for user in users if per_user[user] > 0)
    return Tally(
        registered=len(users),
        emailed=emailed,
        lost=len(users) - emailed,
        duplicated=sum(count - 1 for count in per_user.values() if count > 1),
        unsettled_deliveries=unsettled,
        last_email_at=max((received_at for _, received_at in arrivals), default=None),
    )


async def settle(system: System, sessions: async_sessionmaker, app_id: str, *, timeout: float) -> Tally:
    """Wait (up to `timeout` s) until every user's email has arrived and nothing is in flight; the
    tally at that point, or at the deadline (the test's assertions then say what is missing)."""
    latest: dict[str, Tally] = {}

    async def check() -> bool:
        latest["tally"] = await tally(system, sessions, app_id)
        return latest["tally"].settled

    with contextlib.suppress(AssertionError):
        await eventually(check, timeout=timeout, interval=0.25, what="every email")
    return latest["tally"]
