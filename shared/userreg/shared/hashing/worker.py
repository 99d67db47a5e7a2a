"""One argon2id hashing worker: the process that hashes, and the event loop's end of its socket.

Each worker builds its `PasswordHasher` once from the settings' parameters; hashes are PHC strings
(`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) that carry them. The worker talks over one socket pair
that the event loop reads and writes itself: a request costs one write and one read, with no
helper threads. A worker serves its requests in order, so answers are matched to requests by
position. A worker ends when its socket closes, so workers never outlive the service, even one
killed with SIGKILL. The pool that queues requests and hands them to workers is `hashing`.

This module is what the worker processes import (the forkserver preloads it): keep it free of
anything heavy.
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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

logger = logging.getLogger(__name__)

# multiprocessing.Connection's framing, which the worker side uses: a signed 32-bit length.
_HEADER = struct.Struct("!i")
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
            logger.warning(
                "argon2id parameters %s are below OWASP's minimum (m=%d KiB, t=%d, p=%d): not for production",
                parameters,
                *OWASP_MINIMUM,
            )
        return parameters

    @property
    def meets_owasp_minimum(self) -> bool:
        memory, time_cost, parallelism = OWASP_MINIMUM
        return self.memory_kib >= memory and self.time_cost >= time_cost and self.parallelism >= parallelism

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost, memory_cost=self.memory_kib, parallelism=self.parallelism, type=Type.ID
        )


class HashingUnavailable(RuntimeError):
    """A worker died or the pool is closed; the request could not be hashed."""


# --- what runs inside a worker process ---------------------------------------------------------


def serve(connection: Any, parameters: Argon2Parameters) -> None:
    """A worker: answer `(op, args)` requests in order until the service closes the socket.
    `ping` answers how many passwords it has hashed or verified so far."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the service, which then closes us
    hasher = parameters.hasher()
    hashed = 0
    while True:
        try:
            op, args = pickle.loads(connection.recv_bytes())
        except (EOFError, OSError):
            return
        if op == "hash":
            answer: object = hasher.hash(args[0])
            hashed += 1
        elif op == "verify":
            answer = _verify(hasher, *args)
            hashed += 1
        else:
            answer = hashed
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


# --- the event loop's end ----------------------------------------------------------------------


class HashingWorker:
    """One worker process and the event loop's end of its socket.

    `pending` holds the futures of the requests written to the socket, in order. `answered` is
    called after each answer (the worker has room again), `stopped` once the socket is done with."""

    def __init__(
        self,
        process: Any,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        answered: Callable[[], None],
        stopped: Callable[[], None],
    ) -> None:
        self.process = process
        self._reader = reader
        self._writer = writer
        self._answered = answered
        self._stopped = stopped
        self.pending: collections.deque[asyncio.Future] = collections.deque()
        self._answers = asyncio.create_task(self._read_answers(), name=f"hashing-worker-{process.pid}")

    @classmethod
    async def start(
        cls, parameters: Argon2Parameters, answered: Callable[[], None], stopped: Callable[[], None]
    ) -> HashingWorker:
        # forkserver: workers are forked from a small clean process, never from this threaded one.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        ours, theirs = context.Pipe(duplex=True)
        process = context.Process(target=serve, args=(theirs, parameters), name="userreg-hashing", daemon=True)
        process.start()
        theirs.close()
        sock = socket.socket(fileno=os.dup(ours.fileno()))
        ours.close()
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(process, reader, writer, answered, stopped)

    @property
    def alive(self) -> bool:
        return not self._answers.done()

    def call(self, op: str, *args: object) -> asyncio.Future:
        """Write a request at once, however many are in flight (for pings: the pool keeps its own
        requests to its `in_flight`)."""
        future = asyncio.get_running_loop().create_future()
        self.send(future, op, args)
        return future

    def send(self, future: asyncio.Future, op: str, args: tuple) -> None:
        """Write a request; its answer resolves `future` (unless that is done by then)."""
        if not self.alive:
            raise HashingUnavailable("the hashing worker has stopped")
        payload = pickle.dumps((op, args))
        self._writer.write(_HEADER.pack(len(payload)) + payload)
        self.pending.append(future)

    async def _read_answers(self) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await self._reader.readexactly(_HEADER.size))
                answer = pickle.loads(await self._reader.readexactly(size))
                future = self.pending.popleft()
                if not future.done():  # its caller may have been cancelled meanwhile
                    future.set_result(answer)
                self._answered()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            for future in self.pending:
                if not future.done():
                    future.set_exception(HashingUnavailable("the hashing worker stopped before answering"))
            self.pending.clear()
        # Only when the socket ended: a task cancelled as its loop shuts down replaces nothing.
        self._stopped()

    async def stop(self, seconds: float) -> None:
        """Close the socket (the worker then exits) and wait for the process: `seconds` for its
        last answers, for its exit, and for its exit after a kill."""
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
        await asyncio.wait({self._answers}, timeout=seconds)
        await asyncio.to_thread(self.process.join, seconds)
        if self.process.is_alive():
            self.process.kill()
            await asyncio.to_thread(self.process.join, seconds)
        with contextlib.suppress(ValueError):  # still running after a kill: leave it to the OS
            self.process.close()
