"""argon2id password hashing in a bounded process pool, off the event loop.

Hashing is deliberately slow and CPU-bound, so it runs in worker processes (no GIL contention with
the server) sized to the machine. Each worker builds its `PasswordHasher` once from the settings'
parameters; hashes are PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) that carry them.

This module is also what the worker processes import: keep it free of anything heavy.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import select
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# A password nobody has: unknown logins are verified against its hash so they take as long as known ones.
_DUMMY_PASSWORD = "userreg: no such user"


@dataclass(frozen=True)
class Argon2Parameters:
    time_cost: int
    memory_kib: int
    parallelism: int

    @classmethod
    def from_settings(cls, settings) -> Argon2Parameters:
        return cls(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(time_cost=self.time_cost, memory_cost=self.memory_kib,
                              parallelism=self.parallelism, type=Type.ID)


# --- what runs inside a worker process ---------------------------------------------------------

_worker_hasher: PasswordHasher | None = None


def _start_worker(parameters: Argon2Parameters, service_pid: int | None = None) -> None:
    global _worker_hasher
    _worker_hasher = parameters.hasher()
    if service_pid is not None:
        threading.Thread(target=_exit_with, args=(service_pid,), name="exit-with-service", daemon=True).start()


def _exit_with(service_pid: int) -> None:
    """End this worker when the service process is gone. A worker's parent is the forkserver, not
    the service, so PR_SET_PDEATHSIG would not fire; and a service killed with SIGKILL never shuts
    its pool down: the idle worker would wait on its task queue forever, and keep the forkserver
    (and its resource tracker) alive with it."""
    try:
        pidfd = os.pidfd_open(service_pid)
    except (AttributeError, OSError):  # no pidfd (not Linux, old kernel): look every second
        while _alive(service_pid):
            time.sleep(1.0)
    else:
        select.select([pidfd], [], [])  # readable once the process has exited
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is just not ours to signal
        pass
    return True


def _hash(password: str) -> str:
    assert _worker_hasher is not None
    return _worker_hasher.hash(password)


def _verify(password_hash: str, password: str) -> tuple[bool, bool]:
    assert _worker_hasher is not None
    try:
        _worker_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeEncodeError):
        # UnicodeEncodeError: a login password with a lone surrogate can match nothing.
        return False, False
    return True, _worker_hasher.check_needs_rehash(password_hash)


def _pid() -> int:
    return os.getpid()


# --- the event loop's side ---------------------------------------------------------------------

def worker_count(configured: int) -> int:
    """The pool size: the setting, or one worker per CPU core when it is 0."""
    return configured or os.cpu_count() or 1


class PasswordHashing:
    """Hash and verify passwords in worker processes. `start()` before use, `close()` after."""

    def __init__(self, parameters: Argon2Parameters, workers: int) -> None:
        self.parameters = parameters
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._dummy_hash: str | None = None

    async def start(self) -> None:
        """Start the workers and wait until each is ready, so the first requests are not slow."""
        # forkserver: workers are forked from a small clean process, never from this threaded one.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        self._pool = ProcessPoolExecutor(self.workers, mp_context=context,
                                         initializer=_start_worker, initargs=(self.parameters, os.getpid()))
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._pool, _pid) for _ in range(self.workers)))
        self._dummy_hash = await self.hash(_DUMMY_PASSWORD)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def hash(self, password: str) -> str:
        """The PHC string of a new argon2id hash of the password."""
        return await asyncio.get_running_loop().run_in_executor(self._running(), _hash, password)

    async def verify(self, password_hash: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). With no hash (unknown user) a dummy hash is verified instead,
        so the answer takes as long and is always (False, False)."""
        pool = self._running()
        loop = asyncio.get_running_loop()
        if password_hash is None:
            await loop.run_in_executor(pool, _verify, self._dummy_hash, password)
            return False, False
        return await loop.run_in_executor(pool, _verify, password_hash, password)

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            raise RuntimeError("PasswordHashing.start() was not awaited")
        return self._pool
