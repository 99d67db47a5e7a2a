"""Run a userreg service as a real process, as an operator would, and wait for its health check.

The process is a plain `subprocess.Popen`, not an asyncio subprocess: it belongs to no event loop,
so a fixture that outlives one test (a module-scoped system) can start it in one loop, a test can
kill it in another, and the teardown can stop it without any loop at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.support.polling import eventually

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs"
BIN = Path(sys.executable).parent
EXIT_POLL_SECONDS = 0.05


class ServiceProcess:
    """One service process; its output goes to test-artifacts/logs/<name>.log for post-mortems.

    It leads a process group (a session) of its own, so whatever it starts (the registration
    service's password-hashing workers, say) can be found and cleaned up with it."""

    def __init__(self, name: str, script: str, env: dict[str, str], health_url: str | None) -> None:
        self.name = name
        self.script = script
        self.env = {**os.environ, **env}
        self.health_url = health_url
        self.process: subprocess.Popen | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}.log"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self, timeout: float = 30.0) -> None:
        """Start it (again, after a stop or a kill) and wait until its health check answers 200."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.process = self._spawn()
        health_url = self.health_url
        if health_url:
            await eventually(
                lambda: self._healthy(health_url), timeout=timeout, interval=0.1, what=f"{self.name} to be healthy"
            )

    def _spawn(self) -> subprocess.Popen:
        """The process itself, detached from any event loop (see the module's docstring)."""
        with self.log_path.open("ab") as log:
            log.write(f"---- {time.strftime('%H:%M:%S')} starting {self.script}\n".encode())
            log.flush()
            return subprocess.Popen(
                [str(BIN / self.script)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    async def _healthy(self, health_url: str) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.get(health_url, timeout=aiohttp.ClientTimeout(1)) as response,
            ):
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after `timeout` seconds."""
        process = self.process
        if process is None:
            return None
        with contextlib.suppress(AssertionError):
            await eventually(
                lambda: process.poll() is not None,
                timeout=timeout,
                interval=EXIT_POLL_SECONDS,
                what=f"{self.name} to exit",
            )
        return process.poll()

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, as an orchestrator would; SIGKILL if it does not exit in time."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        code = await self.wait(timeout)
        if code is None:
            return await self.kill()
        return code

    async def kill(self) -> int:
        """SIGKILL to the service process alone: it gets no chance to finish anything. What it
        started itself is left alone (see `group_members`) so a test can see whether it lingers."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        code = await self.wait(30)
        assert code is not None, f"{self.name} survived SIGKILL"
        return code

    def group_members(self) -> list[int]:
        """The pids still alive in the process group the service led (itself included)."""
        if self.process is None:
            return []
        members = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ValueError):
                # /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces.
                stat = (entry / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == self.process.pid:
                    members.append(int(entry.name))
        return members

    def kill_group(self) -> None:
        """SIGKILL to everything in the service's process group, and reap the service: for teardown,
        so nothing outlives the test run whatever happened."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)
