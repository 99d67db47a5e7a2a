"""One lifecycle for every part of a service that runs in the background (an outbox relay, the
mailer's consumer, a LISTEN loop, the retention pruning).

A part is a coroutine function: one "life" of it (connect, set up, work). `Supervised` runs it,
and whatever ends a life that was not asked to end (any exception, or returning) is logged once
and followed by a new life after a back-off: 0.2 s, doubling up to 10 s, and from 0.2 s again
after a life that ran healthy for a while. So a part never stays dead until the process is
restarted, and a broker or database that refuses us is not hammered. Its state (running, or
restarting after which error, how often) is what `/ready` reads (`userreg.shared.runtime.ops`).

    relay = OutboxRelay(…)
    async with Supervised("outbox-relay", relay.run, ready=lambda: relay.connected):
        …   # running (and restarted after failures); on exit stopped, within bounds
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Counter

from userreg.shared.settings import mask_url

if TYPE_CHECKING:
    from aiohttp import web

logger = logging.getLogger(__name__)

INITIAL_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 10.0
# A life that lasted this long was healthy: the next failure is retried after the initial back-off.
HEALTHY_SECONDS = 30.0
STOP_SECONDS = 10.0

RESTARTS = Counter(
    "userreg_background_task_restarts_total",
    "Background tasks (relays, consumers, LISTEN loops) restarted after a failure",
    ["task"],
)

# `password=…` (a libpq DSN's or a driver's keyword): an error's text may quote it.
_KEY_PASSWORD = re.compile(r"(?P<head>password\s*=\s*)[^\s,;&)]+", re.IGNORECASE)


class State(enum.Enum):
    STOPPED = "stopped"  # not started yet, or stopped
    RUNNING = "running"  # a life is running (`Supervised.ready` also asks the part itself)
    RESTARTING = "restarting"  # the last life failed; the next one starts after the back-off


class Backoff:
    """The pauses between attempts at something that keeps failing: `initial` seconds, doubling up to
    `maximum`; after a success, `reset()` starts again from `initial`."""

    __slots__ = ("initial", "maximum", "seconds")

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.seconds = initial  # the next pause

    def reset(self) -> None:
        self.seconds = self.initial

    async def wait(self) -> None:
        """Pause for `seconds`; the pause after it is twice as long (at most `maximum`)."""
        await asyncio.sleep(self.seconds)
        self.seconds = min(self.seconds * 2, self.maximum)


def redact(text: str) -> str:
    """The text with every password in a URL (`amqp://user:***@host`, an error's text may quote the
    URL it failed to reach) or `password=` masked."""
    return _KEY_PASSWORD.sub(r"\g<head>***", mask_url(text))


def describe(error: BaseException) -> str:
    """`Type: message (at file:line in function)`, secrets masked: what a log line says of a failure."""
    text = f"{type(error).__name__}: {redact(str(error))}" if str(error) else type(error).__name__
    # The supervisor's own frame says nothing; where in our code it failed says more than where
    # in a driver it was raised.
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename != __file__]
    ours = [frame for frame in frames if "userreg" in Path(frame.filename).parts]
    where = (ours or frames)[-1] if frames else None
    if where is not None:
        text += f" (at {Path(where.filename).name}:{where.lineno} in {where.name})"
    return text


class Supervised:
    """Runs `run` in a task of its own from `start()` to `stop()`, restarting it after any failure.

    `ready`: asked only while a life runs, for a part that runs before it can do its work (a relay
    whose channel is not open yet); `/ready` reports the part ready when it runs and this says so.
    `stop`: asks the running part to finish what it has in hand (the mailer drains its messages);
    `stop()` waits `grace_seconds` for that, then cancels. A cancelled part gets `stop_seconds` to
    end; one that does not (a driver call that ignores cancellation) is left behind, logged, so
    that shutdown always finishes.
    """

    def __init__(
        self,
        name: str,
        run: Callable[[], Awaitable[None]],
        *,
        ready: Callable[[], bool] | None = None,
        stop: Callable[[], Awaitable[None]] | None = None,
        grace_seconds: float = STOP_SECONDS,
        stop_seconds: float = STOP_SECONDS,
        initial_backoff: float = INITIAL_BACKOFF_SECONDS,
        max_backoff: float = MAX_BACKOFF_SECONDS,
        healthy_seconds: float = HEALTHY_SECONDS,
    ) -> None:
        self.name = name
        self._run = run
        self._readiness = ready
        self._finish = stop
        self._grace_seconds = grace_seconds
        self._stop_seconds = stop_seconds
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._healthy_seconds = healthy_seconds
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.state = State.STOPPED
        self.last_error: str | None = None
        self.restarts = 0

    @property
    def ready(self) -> bool:
        """True while a life runs and, when the part has a readiness callable, that says so too."""
        if self.state is not State.RUNNING:
            return False
        return self._readiness is None or bool(self._readiness())

    def __repr__(self) -> str:
        return (
            f"<Supervised {self.name}: {self.state.value}, {self.restarts} restarts"
            f"{f', last error {self.last_error}' if self.last_error else ''}>"
        )

    async def supervise(self) -> None:
        """Run the part in the calling task, restarting it after each failure, until cancelled
        (or until it ends while `stop()` asked it to)."""
        loop = asyncio.get_running_loop()
        backoff = Backoff(self._initial_backoff, self._max_backoff)
        try:
            while True:
                self.state = State.RUNNING
                started = loop.time()
                try:
                    await self._run()
                except asyncio.CancelledError as error:
                    task = asyncio.current_task()
                    if self._stopping or task is None or task.cancelling():
                        raise
                    # Not ours: a library ended the life with it (aio-pika does, for a closed
                    # connection). Ending the supervision for it would leave the part dead.
                    failure = describe(error)
                except Exception as error:
                    failure = describe(error)
                else:
                    failure = "returned unexpectedly"
                if self._stopping:
                    return  # asked to end: however it ended, nothing is restarted
                if loop.time() - started >= self._healthy_seconds:
                    backoff.reset()
                self.state, self.last_error = State.RESTARTING, failure
                self.restarts += 1
                RESTARTS.labels(self.name).inc()
                logger.warning("%s failed (%s); restarting in %.1fs", self.name, failure, backoff.seconds)
                await backoff.wait()
        finally:
            self.state = State.STOPPED

    def start(self) -> None:
        """Start the first life in a task of its own (at once; nothing is awaited)."""
        if self._task is not None:
            raise RuntimeError(f"{self.name} is already started")
        self._stopping = False
        self.state = State.RUNNING
        self._task = asyncio.create_task(self.supervise(), name=self.name)

    async def stop(self) -> None:
        """Stop the part and its restarts, within bounds (see the class); idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        try:
            if self._finish is not None and self.state is State.RUNNING and not task.done():
                try:
                    await self._finish()
                except Exception as error:
                    logger.warning("%s: asking it to stop failed (%s)", self.name, describe(error))
                await asyncio.wait({task}, timeout=self._grace_seconds)
            if not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=self._stop_seconds)
            if not task.done():
                task.cancel()  # once more, for a part that swallowed the first; not waited for
                logger.warning("%s did not stop within %.1fs; going on without it", self.name, self._stop_seconds)
            elif not task.cancelled() and (failure := task.exception()) is not None:
                logger.error("%s ended with %s", self.name, describe(failure))
        finally:
            self.state = State.STOPPED

    async def __aenter__(self) -> Supervised:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


def supervised_in(
    key: web.AppKey[Supervised], build: Callable[[web.Application], Supervised]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp `cleanup_ctx` entry: when the app starts, `build(app)` makes the part (the
    resources it needs are open by then), it is stored under `key` (where `/ready` finds it) and
    started; when the app shuts down, it is stopped."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        part = build(app)
        app[key] = part
        async with part:
            yield

    return lifecycle
