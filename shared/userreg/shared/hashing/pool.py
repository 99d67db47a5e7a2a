"""argon2id password hashing in a bounded pool of worker processes, off the event loop, with
back-pressure.

Hashing is deliberately slow and CPU-bound, so it runs in worker processes (no GIL contention with
the server), one per core by default (`worker.py`: the process and its socket). A request
costs one write and one read on the event loop, with no helper threads (`concurrent.futures`'
process pool needs a feeder and a manager thread and several wake-ups per call, which at cheap
hash settings cost more than the hash).

Back-pressure (the README's Security section): every login costs a full hash, even of an unknown identity, so a flood
must not buy minutes of CPU. Each worker holds at most `IN_FLIGHT` requests in its socket (the one
it hashes and the next, ready the moment it finishes; more only when hashes are so cheap that two
take less than `IN_FLIGHT_SECONDS`); the others wait on the event loop's side in one bounded queue
and go, oldest first, to the least busy worker with room. `start()` times a few hashes and sizes
the queue to `HASH_QUEUE_SECONDS` of hashing (ceil(seconds × workers / seconds per hash), at least
`MIN_QUEUED_PER_WORKER` per worker). When it is full, `hash` and `verify` raise
`HashingBusy` (registration answers it 9009, 503, with a Retry-After estimated from the work queued and in flight)
at once, without hashing anything. A waiter cancelled before its turn (aiohttp cancels the handler
of a client that disconnected: `handler_cancellation` in `__main__`) is dropped, never sent to a
worker; a request already in a worker's socket is hashed and its answer discarded, so answers
still match requests by position. A worker that dies fails the requests in its socket; another is
started at once and takes the queue over.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
import time
from typing import Any

from userreg.shared.hashing.worker import Argon2Parameters, HashingUnavailable, HashingWorker

logger = logging.getLogger(__name__)

# A password nobody has: unknown logins are verified against its hash so they take as long as known ones.
_DUMMY_PASSWORD = "userreg: no such user"
# Each bounded wait of a shutdown: a replacement worker under way, then each worker's last
# answers, its exit, and its exit after a kill.
_STOP_SECONDS = 5.0

# Requests a worker holds in its socket at once: the one it hashes and the next, so it never waits
# for the event loop between two hashes. More would only move the queue out of reach, unless hashes
# are so cheap (tests, benchmarks) that two take less than the event loop's round trip: then as
# many as take IN_FLIGHT_SECONDS.
IN_FLIGHT = 2
IN_FLIGHT_SECONDS = 0.002
# The smallest queue, whatever the measured hash time: a burst the size of the pool is not a flood.
MIN_QUEUED_PER_WORKER = 2
# Hashes per worker timed at start-up (after one that warms the worker up) to size the queue.
_TIMED_HASHES_PER_WORKER = 2


def worker_count(configured: int) -> int:
    """The pool size: the setting, or one worker per CPU core when it is 0."""
    return configured or os.cpu_count() or 1


class HashingBusy(Exception):
    """The hashing queue is full: nothing was hashed. `retry_after_seconds` estimates when it has room."""

    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"the password-hashing queue is full; retry in {retry_after_seconds:.1f} s")
        self.retry_after_seconds = retry_after_seconds


class PasswordHashing:
    """Hash and verify passwords in worker processes, behind a queue that holds at most
    `queue_seconds` of hashing. `start()` before use, `close()` after."""

    def __init__(self, parameters: Argon2Parameters, workers: int, queue_seconds: float = 3.0) -> None:
        self.parameters = parameters
        self.workers = workers
        self.queue_seconds = queue_seconds
        # Measured by start(): a worker's time per hash, and what it makes of the socket depth and
        # of the queue's length.
        self.seconds_per_hash = 0.0
        self.in_flight = IN_FLIGHT
        self.capacity = MIN_QUEUED_PER_WORKER * workers
        self._pool: list[HashingWorker] = []
        self._dummy_hash: str | None = None
        # Requests no worker has yet, oldest first. `_queued` counts the ones still wanted: a
        # cancelled one stays in the deque until the dispatcher reaches it, but no longer counts.
        self._waiting: collections.deque[tuple[asyncio.Future, str, tuple]] = collections.deque()
        self._queued = 0
        self._closed = False
        self._replacement: asyncio.Task | None = None  # one at a time, however many callers notice

    async def start(self) -> None:
        """Start the workers, wait until each answers, and time a few hashes to size the queue,
        so the first requests are not slow and a flood is refused from the first."""
        try:
            for _ in range(self.workers):
                self._pool.append(await self._start_worker())
            await asyncio.gather(*(worker.call("ping") for worker in self._pool))
            # A worker's first hash allocates its memory, so it is not timed.
            await asyncio.gather(*(self.hash(_DUMMY_PASSWORD) for _ in self._pool))
            timed = _TIMED_HASHES_PER_WORKER * self.workers
            started = time.perf_counter()
            self._dummy_hash, *_ = await asyncio.gather(*(self.hash(_DUMMY_PASSWORD) for _ in range(timed)))
            self.seconds_per_hash = (time.perf_counter() - started) * self.workers / timed
        except BaseException:
            await self.close()
            raise
        seconds_per_hash = max(self.seconds_per_hash, 1e-6)
        self.in_flight = max(IN_FLIGHT, math.floor(IN_FLIGHT_SECONDS / seconds_per_hash))
        self.capacity = max(
            MIN_QUEUED_PER_WORKER * self.workers, math.ceil(self.queue_seconds * self.workers / seconds_per_hash)
        )
        logger.info(
            "password hashing: %d workers, %.2f ms per hash, %d in flight per worker, a queue of %d requests (%.1f s)",
            self.workers,
            self.seconds_per_hash * 1000,
            self.in_flight,
            self.capacity,
            self.queue_seconds,
        )

    async def close(self) -> None:
        """Fail the requests that wait, let a replacement under way finish, stop every worker."""
        self._closed = True
        if self._replacement is not None and not self._replacement.done():
            await asyncio.wait({self._replacement}, timeout=_STOP_SECONDS)
            self._replacement.cancel()
        self._fail_waiting("the password-hashing pool is closed")
        pool, self._pool = self._pool, []
        await asyncio.gather(*(worker.stop(_STOP_SECONDS) for worker in pool))

    async def hash(self, password: str) -> str:
        """The PHC string of a new argon2id hash of the password; `errors.HashingBusy` at once
        when the queue is full."""
        return await self._call("hash", password)

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). With no hash (unknown user) a dummy hash is verified instead,
        so the answer takes as long and is always (False, False). `errors.HashingBusy` at once
        when the queue is full."""
        if password_hash is None:
            await self._call("verify", self._dummy_hash, password)
            return False, False
        return tuple(await self._call("verify", password_hash, password))

    async def _call(self, op: str, *args: object) -> Any:
        if self._closed or not self._pool:
            raise HashingUnavailable("PasswordHashing.start() was not awaited, or the pool is closed")
        if not all(worker.alive for worker in self._pool):
            self._replace_dead_workers_soon()  # again, if the last replacement failed
        if self._queued >= self.capacity:
            raise HashingBusy(self._seconds_of_work_ahead())
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((future, op, args))
        self._queued += 1
        future.add_done_callback(self._left_queue)  # removed when a worker takes it
        self._dispatch()
        return await future

    def _left_queue(self, future: asyncio.Future) -> None:
        """A waiting request was cancelled (or failed) before a worker took it."""
        self._queued -= 1

    def _dispatch(self) -> None:
        """Hand the waiting requests, oldest first, to workers with room; drop the cancelled ones."""
        while self._waiting:
            worker = self._least_busy_worker_with_room()
            if worker is None:
                return
            future, op, args = self._waiting.popleft()
            if future.done():  # its caller went away (a client that disconnected): never hashed
                continue
            future.remove_done_callback(self._left_queue)
            self._queued -= 1
            worker.send(future, op, args)

    def _least_busy_worker_with_room(self) -> HashingWorker | None:
        """A slow hash never holds up a request another worker could take."""
        with_room = (worker for worker in self._pool if worker.alive and len(worker.pending) < self.in_flight)
        return min(with_room, key=lambda worker: len(worker.pending), default=None)

    def _fail_waiting(self, reason: str) -> None:
        while self._waiting:
            future, _, _ = self._waiting.popleft()
            if not future.done():
                future.set_exception(HashingUnavailable(reason))

    def _seconds_of_work_ahead(self) -> float:
        """How long the live workers take for what is queued and in flight: the Retry-After."""
        alive = sum(worker.alive for worker in self._pool) or 1
        in_flight = sum(len(worker.pending) for worker in self._pool)
        return (self._queued + in_flight) * self.seconds_per_hash / alive

    async def _start_worker(self) -> HashingWorker:
        return await HashingWorker.start(self.parameters, self._dispatch, self._worker_stopped)

    def _worker_stopped(self) -> None:
        if not self._closed:
            self._replace_dead_workers_soon()

    def _replace_dead_workers_soon(self) -> None:
        if self._replacement is None or self._replacement.done():
            self._replacement = asyncio.create_task(self._replace_dead_workers(), name="hashing-replacement")

    async def _replace_dead_workers(self) -> None:
        """Start a worker in each dead one's place; the new ones take the queue over."""
        for index, worker in enumerate(self._pool):
            if worker.alive or self._closed:
                continue
            logger.error("hashing worker %s stopped; starting another", worker.process.pid)
            try:
                self._pool[index] = await self._start_worker()
            except Exception:
                logger.exception("could not start a hashing worker")
                if not any(worker.alive for worker in self._pool):
                    # Nothing would ever take the queue: fail it rather than let it wait for ever.
                    self._fail_waiting("no hashing worker could be started")
                return
            self._dispatch()
            await worker.stop(_STOP_SECONDS)
