"""Run a userreg service as a real process, as an operator would, and wait for its health check."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp

from tests.support.polling import eventually

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "logs"
BIN = Path(sys.executable).parent


class ServiceProcess:
    """One service process; its output goes to test-artifacts/logs/<name>.log for post-mortems."""

    def __init__(self, name: str, script: str, env: dict[str, str], health_url: str | None) -> None:
        self.name = name
        self.script = script
        self.env = {**os.environ, **env}
        self.health_url = health_url
        self.process: asyncio.subprocess.Process | None = None
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log_path = ARTIFACTS / f"{name}.log"

    async def start(self, timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(BIN / self.script), env=self.env, stdout=log, stderr=asyncio.subprocess.STDOUT)
        finally:
            log.close()
        if self.health_url:
            await eventually(self._healthy, timeout=timeout, interval=0.1, what=f"{self.name} to be healthy")

    async def _healthy(self) -> bool:
        if self.process is not None and self.process.returncode is not None:
            raise AssertionError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
        try:
            async with aiohttp.ClientSession() as http, http.get(self.health_url, timeout=aiohttp.ClientTimeout(1)) as r:
                return r.status == 200
        except (aiohttp.ClientError, asyncio.TimeoutError):
            return False

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, as an orchestrator would; SIGKILL if it does not exit in time."""
        if self.process is None or self.process.returncode is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except asyncio.TimeoutError:
            return await self.kill()

    async def kill(self) -> int:
        """SIGKILL: the process gets no chance to finish anything."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.kill()
        return await self.process.wait()
