"""argon2id password hashing in a bounded pool of worker processes, off the event loop.

Hashing is deliberately slow and CPU-bound, so it runs in worker processes (no GIL contention with
the server), one per core by default. Each worker builds its `PasswordHasher` once from the
settings' parameters; hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) that carry
them.

The pool talks to each worker over one socket pair, read and written by the event loop itself: a
request costs one write and one read, with no helper threads (`concurrent.futures`' process pool
needs a feeder and a manager thread and several wake-ups per call, which at cheap hash settings
cost more than the hash). A worker serves its requests in order, so answers are matched to
requests by position. A worker ends when its socket closes, so workers never outlive the service,
even one killed with SIGKILL.

This module is also what the worker processes import: keep it free of anything heavy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

# A password nobody has: unknown logins are verified against its hash so they take as long as known ones.
_DUMMY_PASSWORD = "userreg: no such user"
# multiprocessing.Connection's framing, which the worker side uses: a signed 32-bit length.
_HEADER = struct.Struct("!i")
_STOP_SECONDS = 5.0


# OWASP's minimum recommendation for argon2id: memory (KiB), iterations, parallelism.
OWASP_MINIMUM = (19456, 2, 1)


@dataclass(frozen=True)
class Argon2Parameters:
    time_cost: int
    memory_kib: int
    parallelism: int

    @classmethod
    def from_settings(cls, settings) -> Argon2Parameters:
        parameters = cls(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
        if not parameters.meets_owasp_minimum:
            # Allowed (tests and benchmarks measure the minimal cost), never silently.
            logger.warning("argon2id parameters %s are below OWASP's minimum (m=%d KiB, t=%d, p=%d): "
                           "not for production", parameters, *OWASP_MINIMUM)
        return parameters

    @property
    def meets_owasp_minimum(self) -> bool:
        memory, time_cost, parallelism = OWASP_MINIMUM
        return self.memory_kib >= memory and self.time_cost >= time_cost and self.parallelism >= parallelism

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib,
                              parallelism=self.parallelism, type=Type.ID)


class HashingUnavailable(RuntimeError):
    """A worker died or the pool is closed; the request could not be hashed."""


# --- what runs inside a worker process ---------------------------------------------------------

def _serve(connection: Any, parameters: Argon2Parameters) -> None:
    """A worker: answer `(op, args)` requests in order until the service closes the socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service, which then closes us
    hasher = parameters.hasher()
    while True:
        try:
            op, args = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        if op == "hash":
            answer: object = hasher.hash(args[0])
        elif op == "verify":
            answer = _verify(hasher, *args)
        else:
            answer = os.getpid()
        try:
            connection.send_bytes(pickle.dumps(answer))
        except OSError:  # the service is gone
            return


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> tuple[bool, bool]:
    try:
        hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
        # UnicodeEncodeError: a login password with a lone surrogate can match nothing.
        return False, False
    return True, hasher.check_needs_rehash(password_hash)


# --- the event loop's side ---------------------------------------------------------------------

def worker_count(configured: int) -> int:
    """The pool size: the setting, or one worker per CPU core when it is 0."""
    return configured or os.cpu_count() or 1


class _Worker:
    """One worker process and the event loop's end of its socket."""

    def __init__(self, process: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer
        self.pending: collections.deque[asyncio.Future] = collections.deque()
        self._answers = asyncio.create_task(self._read_answers(), name=f"hashing-worker-{process.pid}")

    @classmethod
    async def start(cls, context: Any, parameters: Argon2Parameters) -> _Worker:
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(target=_serve, args=(theirs, parameters), name="userreg-hashing",
                                  daemon=True)
        process.start()
        theirs.close()
        sock = socket.socket(fileno=os.dup(ours.fileno()))
        ours.close()
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(process, reader, writer)

    @property
    def alive(self) -> bool:
        return not self._answers.done()

    def call(self, op: str, *args: object) -> asyncio.Future:
        if not self.alive:
            raise HashingUnavailable("the hashing worker has stopped")
        payload = pickle.dumps((op, args))
        self._writer.write(_HEADER.pack(len(payload)) + payload)
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        return future

    async def _read_answers(self) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
                answer = pickle.loads(await self._reader.readexactly(size))
                future = self.pending.popleft()
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for future in self.pending:
                if not future.done():
                    future.set_exception(HashingUnavailable("the hashing worker stopped before answering"))
            self.pending.clear()

    async def stop(self) -> None:
        """Close the socket (the worker then exits) and wait for the process, bounded."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        await asyncio.wait({self._answers}, timeout=_STOP_SECONDS)
        await asyncio.to_thread(self.process.join, _STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, _STOP_SECONDS)
        with contextlib.suppress(ValueError):  # still running after a kill: leave it to the OS
            self.process.close()


class PasswordHashing:
    """Hash and verify passwords in worker processes. `start()` before use, `close()` after."""

    def __init__(self, parameters: Argon2Parameters, workers: int) -> None:
        self.parameters = parameters
        self.workers = workers
        self._pool: list[_Worker] = []
        self._dummy_hash: str | None = None
        self._replacing = asyncio.Lock()

    async def start(self) -> None:
        """Start the workers and wait until each answers, so the first requests are not slow."""
        # forkserver: workers are forked from a small clean process, never from this threaded one.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        try:
            for _ in range(self.workers):
                self._pool.append(await _Worker.start(context, self.parameters))
            await asyncio.gather(*(worker.call("ping") for worker in self._pool))
            self._dummy_hash = await self.hash(_DUMMY_PASSWORD)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        pool, self._pool = self._pool, []
        await asyncio.gather(*(worker.stop() for worker in pool))

    async def hash(self, password: str) -> str:
        """The PHC string of a new argon2id hash of the password."""
        return await self._call("hash", password)

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). With no hash (unknown user) a dummy hash is verified instead,
        so the answer takes as long and is always (False, False)."""
        if password_hash is None:
            await self._call("verify", self._dummy_hash, password)
            return False, False
        return tuple(await self._call("verify", password_hash, password))

    async def _call(self, op: str, *args: object) -> Any:
        if not all(worker.alive for worker in self._pool):
            await self._replace_dead_workers()
        if not self._pool:
            raise HashingUnavailable("PasswordHashing.start() was not awaited, or the pool is closed")
        # The least busy worker: a slow hash never holds up requests another worker could take.
        worker = min(self._pool, key=lambda candidate: len(candidate.pending))
        return await worker.call(op, *args)

    async def _replace_dead_workers(self) -> None:
        async with self._replacing:  # concurrent callers replace a dead worker once
            for index, worker in enumerate(self._pool):
                if not worker.alive:
                    logger.error("hashing worker %s stopped (exit code %s); starting another",
                                 worker.process.pid, worker.process.exitcode)
                    self._pool[index] = await _Worker.start(multiprocessing.get_context("forkserver"),
                                                            self.parameters)
                    await worker.stop()
