"""Child processes of `userreg run`: start them, stream their logs with a prefix, wait until they
are healthy, notice when one dies, and stop them all (SIGTERM, then SIGKILL after a grace period)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import aiohttp

T = TypeVar("T")

LINE_LIMIT = 1 << 20
STOP_GRACE_SECONDS = 15.0
EXIT_POLL_SECONDS = 0.1
COLOURS = ("36", "33", "35", "32", "34", "31")


class Stopping(Exception):
    """Raised out of `Supervisor.guard` when Ctrl-C/SIGTERM arrived or a child died."""


class Unhealthy(Exception):
    """A child did not answer its health check in time."""


def find_script(name: str) -> str:
    """The console script installed beside this Python (the project's venv), else one on PATH;
    `FileNotFoundError` when there is neither."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(name)
    return found


class Output:
    """One writer for every line, so that lines of different processes never interleave."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.width = 16

    def line(self, source: str, text: str, colour: str | None = None) -> None:
        prefix = f"{source:<{self.width}}|"
        if self.colour and colour:
            prefix = f"\x1b[{colour}m{prefix}\x1b[0m"
        self.stream.write(f"{prefix} {text}\n")
        self.stream.flush()

    def plain(self, text: str) -> None:
        """A line without a prefix: what a person copies (a URL, a curl) must be whole."""
        self.stream.write(f"{text}\n")
        self.stream.flush()


class Child:
    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], output: Output, colour: str) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.output = output
        self.colour = colour
        self.tier = 0
        self.process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task | None = None
        self.exited: asyncio.Task | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.returncode

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            limit=LINE_LIMIT,
            # A group of its own: Ctrl-C reaches only the runner, which stops the children in order.
            process_group=0,
        )
        self._pump = asyncio.create_task(self._pump_output(), name=f"{self.name}-output")
        self.exited = asyncio.create_task(self._wait(), name=f"{self.name}-wait")

    async def _wait(self) -> int:
        assert self.process is not None
        # Not `process.wait()`: it also waits for the output pipe to close, and a worker the service
        # forked (its password-hashing pool) can hold that open after the service itself died.
        # asyncio signals no event when only the process has exited, so its return code is polled.
        while self.process.returncode is None:  # noqa: ASYNC110 - no exit-only event to wait on
            await asyncio.sleep(EXIT_POLL_SECONDS)
        code = self.process.returncode
        # Whatever the service left behind in its process group goes with it.
        self.kill_group()
        if self._pump is not None:
            # Show the last words (often why it died) before anyone reports the exit.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._pump), 2)
        return code

    async def _pump_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        stream = self.process.stdout
        while True:
            try:
                raw = await stream.readline()
            except ValueError:
                self.output.line(self.name, f"(a line longer than {LINE_LIMIT} bytes was left out)", self.colour)
                continue
            if not raw:
                return
            self.output.line(self.name, raw.decode("utf-8", "replace").rstrip("\r\n"), self.colour)

    async def wait_healthy(self, url: str, http: aiohttp.ClientSession, timeout: float) -> None:
        """Poll `url` until it answers 200; raise `Unhealthy` on timeout (an exit is the guard's job)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.2)
        raise Unhealthy(f"{self.name} did not answer {url} within {timeout:.0f}s")

    def kill_group(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM, as an orchestrator does; SIGKILL if it is still there after `grace` seconds."""
        if self.process is None:
            return None
        assert self.exited is not None, "`start` creates the process and its exit's task together"
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self.exited), grace)
            except TimeoutError:
                self.output.line("userreg", f"{self.name} did not stop within {grace:.0f}s: killing it")
                self.kill_group()
        await self.exited
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        return self.process.returncode


class Supervisor:
    """Owns the children. `guard(work)` runs work until it finishes, a child dies or a stop is
    requested (then it raises `Stopping`); `stop_all()` stops the children, newest first."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.children: list[Child] = []
        self.died: Child | None = None
        self._event = asyncio.Event()

    def request_stop(self) -> None:
        self._event.set()

    @property
    def stop_requested(self) -> bool:
        return self._event.is_set()

    async def start(self, name: str, argv: list[str], env: Mapping[str, str], tier: int = 0) -> Child:
        """Start a child; `stop_all` stops higher tiers first (what others depend on stops last)."""
        child = Child(name, argv, env, self.output, COLOURS[len(self.children) % len(COLOURS)])
        child.tier = tier
        await child.start()
        self.children.append(child)
        assert child.exited is not None
        child.exited.add_done_callback(lambda _task: self._on_exit(child))
        return child

    def _on_exit(self, child: Child) -> None:
        if not self._event.is_set():
            self.died = child
            self._event.set()

    async def guard(self, work: Awaitable[T]) -> T:
        task = asyncio.ensure_future(work)
        stop = asyncio.create_task(self._event.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise Stopping()

    async def run_until_stopped(self) -> None:
        await self._event.wait()

    async def stop_all(self) -> None:
        for child in reversed(self.children):
            if child.returncode is None:
                self.output.line("userreg", f"stopping {child.name} (pid {child.pid})")
        for tier in sorted({child.tier for child in self.children}, reverse=True):
            await asyncio.gather(*(child.stop() for child in self.children if child.tier == tier))


def install_stop_signals(loop: asyncio.AbstractEventLoop, stop: Callable[[], None]) -> Callable[[], None]:
    """Ctrl-C, SIGTERM and a closed terminal all mean stop; returns the undo."""
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in signals:
        loop.add_signal_handler(signum, stop)

    def undo() -> None:
        for signum in signals:
            loop.remove_signal_handler(signum)

    return undo
