"""One port served by several processes (`WEB_PROCESSES`), so that one machine with N cores runs
N copies of a web service without a load balancer in front: each process listens on the same
address with SO_REUSEPORT and the kernel spreads the connections over them.

    serve(create_app, settings, port=settings.registration_port, shutdown_timeout=10)

With one process (the default) this is `web.run_app` in this process. With more, this process only
supervises: it forks the servers, each with its share of the password-hashing workers, starts
again one that dies (after a back-off when it keeps dying), and on SIGTERM or SIGINT passes
SIGTERM on, so each finishes its requests and closes its resources, then waits for them. A server
whose supervisor is killed outright gets SIGTERM from the kernel (Linux's parent-death signal), so
none outlives it.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from userreg.shared.settings import Settings

logger = logging.getLogger(__name__)

FIRST_RESTART_SECONDS = 1.0
MAX_RESTART_SECONDS = 30.0
# A server that ran this long before it died is started again at once; sooner, after a back-off.
STEADY_SECONDS = 10.0
PR_SET_PDEATHSIG = 1

AppFactory = Callable[[Settings], web.Application]


def serve(
    make_app: AppFactory, settings: Settings, *, port: int, stop_seconds: float = 60.0, **run_app_options: Any
) -> None:
    """Serve `make_app(settings)` on BIND_HOST:`port` in WEB_PROCESSES processes until SIGTERM or
    SIGINT. `stop_seconds`: how long the servers may take to stop before they are killed."""
    options = {"host": settings.bind_host, "port": port, "print": None, **run_app_options}
    if settings.web_processes == 1:
        web.run_app(make_app(settings), **options)
        return
    _Servers(make_app, server_settings(settings), options, settings.web_processes, stop_seconds).run()


def server_settings(settings: Settings) -> Settings:
    """One server's settings: its share of the hashing workers (HASH_WORKERS, or one per core),
    at least one each."""
    total = settings.hash_workers or os.cpu_count() or 1
    return settings.model_copy(update={"hash_workers": max(1, total // settings.web_processes)})


class _Servers:
    def __init__(
        self, make_app: AppFactory, settings: Settings, options: dict[str, Any], count: int, stop_seconds: float
    ) -> None:
        self._make_app = make_app
        self._settings = settings
        self._options = {**options, "reuse_port": True}
        self._count = count
        self._stop_seconds = stop_seconds
        self._context = multiprocessing.get_context("fork")
        self._processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._restart_at: dict[int, float] = {}
        self._delays = dict.fromkeys(range(count), FIRST_RESTART_SECONDS)
        self._stopping = False

    def run(self) -> None:
        previous = {number: signal.signal(number, self._stop) for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            logger.info("serving port %s from %d processes", self._options["port"], self._count)
            for index in range(self._count):
                self._start(index)
            while not self._stopping:
                self._watch()
        finally:
            self._stop_all()
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _stop(self, _signal: int, _frame: object) -> None:
        self._stopping = True

    def _start(self, index: int) -> None:
        process = self._context.Process(
            target=_serve_one, name=f"web-{index}", args=(self._make_app, self._settings, self._options, os.getpid())
        )
        process.start()
        self._processes[index] = process
        self._started[index] = time.monotonic()

    def _watch(self) -> None:
        """Wait a little for a server to end; start again those that ended and whose time came."""
        now = time.monotonic()
        waits = [at - now for at in self._restart_at.values()]
        living = [process.sentinel for process in self._processes.values() if process.exitcode is None]
        multiprocessing.connection.wait(living, timeout=max(0.0, min([1.0, *waits])))
        if self._stopping:
            return
        now = time.monotonic()
        for index, process in list(self._processes.items()):
            if process.exitcode is None or index in self._restart_at:
                continue
            ran = now - self._started[index]
            self._delays[index] = (
                FIRST_RESTART_SECONDS if ran >= STEADY_SECONDS else min(self._delays[index] * 2, MAX_RESTART_SECONDS)
            )
            delay = 0.0 if ran >= STEADY_SECONDS else self._delays[index]
            logger.warning(
                "server process %s ended with %s after %.1fs; starting it again in %.1fs",
                process.pid,
                process.exitcode,
                ran,
                delay,
            )
            self._restart_at[index] = now + delay
        for index, at in list(self._restart_at.items()):
            if at <= now:
                del self._restart_at[index]
                self._start(index)

    def _stop_all(self) -> None:
        living = [process for process in self._processes.values() if process.exitcode is None]
        for process in living:
            process.terminate()  # SIGTERM: each stops as run_app stops, gracefully
        deadline = time.monotonic() + self._stop_seconds
        for process in living:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                logger.error("server process %s did not stop in %.0fs; killing it", process.pid, self._stop_seconds)
                process.kill()
                process.join()
        logger.info("all %d server processes stopped", self._count)


def _serve_one(make_app: AppFactory, settings: Settings, options: dict[str, Any], supervisor: int) -> None:
    _die_with(supervisor)
    # The supervisor's handlers were inherited: run_app installs its own for a graceful stop.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)
    web.run_app(make_app(settings), **options)


def _die_with(supervisor: int) -> None:
    """SIGTERM this process when its supervisor dies, however it dies (Linux); if it already has,
    end at once."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:
        os._exit(1)
