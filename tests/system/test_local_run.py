"""`userreg run` (what `make run` starts) as a person uses it: start it on free ports with a fresh
database, paste the printed curl, find the confirmation email in the local inbox, sign in to the
console with the operator it printed, press Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.polling import eventually, free_port
from userreg.shared.db import drop_database
from userreg.shared.db.models import Operator
from userreg.shared.messaging import Topology, delete_topology

USERREG = str(Path(sys.executable).parent / "userreg")
STARTED = re.compile(r"started (\S+) \(pid (\d+)\)")
START_TIMEOUT = 120.0


class LocalRun:
    """One `userreg run` process and everything it printed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            USERREG,
            "run",
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace").rstrip("\n"))

    def line_starting(self, prefix: str) -> str | None:
        return next((line for line in self.lines if line.startswith(prefix)), None)

    async def wait_for_line(self, prefix: str, timeout: float = START_TIMEOUT) -> str:
        def printed() -> str | None:
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"userreg run exited with {self.process.returncode}:\n" + self.output)
            return self.line_starting(prefix)

        return await eventually(printed, timeout=timeout, interval=0.1, what=f"a line starting {prefix!r}")

    @property
    def children(self) -> dict[str, int]:
        return {match[1]: int(match[2]) for line in self.lines if (match := STARTED.search(line))}

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 10)
        return code

    async def kill(self) -> None:
        """Clean-up after a failed test: the runner and every child it reported."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for pid in self.children.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # each child leads a process group of its own
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def gone(pid: int) -> bool:
    """The child and everything it started (its process group: hashing workers and the like)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def all_gone(children: dict[str, int]) -> None:
    # A process killed last may need a moment to be reaped.
    await eventually(
        lambda: all(gone(pid) for pid in children.values()),
        timeout=10,
        what=f"every child process to be gone: {children}",
    )


async def stored_password_matches(env: dict[str, str], email: str, password: str) -> bool:
    """Whether the run's database holds the operator with the hash of exactly that password."""
    engine = create_async_engine(env["DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            password_hash = await connection.scalar(select(Operator.password_hash).where(Operator.email == email))
    finally:
        await engine.dispose()
    return password_hash is not None and PasswordHasher().verify(password_hash, password)


@pytest.fixture
async def run_env(settings):
    """The environment of a `userreg run` with its own ports, database and exchange (cleaned up)."""
    database = f"userreg_run_{uuid.uuid4().hex[:10]}"
    exchange = f"userreg.test.run.{uuid.uuid4().hex[:10]}"
    url = make_url(settings.database_dsn)
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SMTP_") and name not in ("PUBLIC_CONFIRMATION_URL", "BIND_HOST")
    }
    env.update(
        {
            "DATABASE_URL": url.set(database=database).render_as_string(hide_password=False),
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": exchange,
            "REGISTRATION_PORT": str(free_port()),
            "CONFIRMATION_PORT": str(free_port()),
            "MAILER_PORT": str(free_port()),
            "CONSOLE_PORT": str(free_port()),
            "INBOX_SMTP_PORT": str(free_port()),
            "INBOX_HTTP_PORT": str(free_port()),
            "ARGON2_MEMORY_KIB": "8",
            "ARGON2_TIME_COST": "1",
            "HASH_WORKERS": "1",
            "NO_COLOR": "1",
        }
    )
    yield env
    await drop_database(url.set(database=database).render_as_string(hide_password=False))
    await delete_topology(settings.amqp_dsn, Topology(exchange))


async def test_run_prints_a_curl_whose_user_gets_the_confirmation_email_and_ctrl_c_stops_all(run_env):
    runner = LocalRun(run_env)
    await runner.start()
    try:
        curl = await runner.wait_for_line("curl ")
        children = runner.children
        assert set(children) == {"inbox", "registration", "mailer", "confirmation-web", "console"}
        assert "demo app created" in runner.output
        console = f"http://127.0.0.1:{run_env['CONSOLE_PORT']}"
        assert runner.line_starting(f"  console              {console}")
        # The first operator, with its generated password, shown this once.
        created = await runner.wait_for_line("  console operator created: ")
        email, password = re.fullmatch(r"  console operator created: (\S+)   password: (\S+)", created).groups()
        assert email == "admin@localhost" and len(password) >= 12
        assert await stored_password_matches(run_env, email, password)
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{console}/sign-in",
                data={"email": email, "password": password, "next": "/"},
                headers={"Origin": console},
                allow_redirects=False,
            ) as signed_in,
        ):
            assert signed_in.status == 303 and "userreg_console" in signed_in.cookies

        pasted = await asyncio.create_subprocess_exec("bash", "-c", curl, stdout=asyncio.subprocess.PIPE)
        body, _ = await pasted.communicate()
        assert pasted.returncode == 0
        user = json.loads(body)
        assert user["userStatus"] == "EMAIL_CONFIRMATION_PENDING" and "password" not in user

        inbox = f"http://127.0.0.1:{run_env['INBOX_HTTP_PORT']}"
        async with aiohttp.ClientSession() as http:

            async def delivered():
                async with http.get(f"{inbox}/api/messages", params={"to": user["email"]}) as response:
                    return await response.json()

            (summary,) = await eventually(delivered, timeout=30, what="the confirmation email in the inbox")
            async with http.get(f"{inbox}/api/messages/{summary['id']}") as response:
                message = await response.json()
            link = re.search(r"http://127\.0\.0\.1:\d+/[0-9A-F-]{36}/confirm/[A-Za-z0-9_-]{43}", message["text"])
            assert link, message["text"]
            assert link[0].startswith(f"http://127.0.0.1:{run_env['CONFIRMATION_PORT']}/")
            async with http.get(link[0]) as page:
                assert page.status == 200
                assert 'data-page="confirmation-pending"' in await page.text()

        runner.process.send_signal(signal.SIGINT)
        assert await runner.wait() == 0, runner.output
        await all_gone(children)
        assert "stopped" in runner.lines[-1]
    finally:
        await runner.kill()

    # A second run reuses the demo app.
    again = LocalRun(run_env)
    await again.start()
    try:
        await again.wait_for_line("curl ")
        assert "demo app reused" in again.output
        # An operator exists: the console's URL only, no new operator and no password.
        assert again.line_starting(f"  console              {console}")
        assert "operator created" not in again.output and password not in again.output
        again.process.send_signal(signal.SIGTERM)
        assert await again.wait() == 0
    finally:
        await again.kill()


async def test_with_an_smtp_server_configured_no_inbox_starts_and_a_dying_service_stops_the_rest(run_env):
    smtp_port = free_port()
    runner = LocalRun({**run_env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port)})
    await runner.start()
    try:
        await runner.wait_for_line("curl ")
        children = runner.children
        assert set(children) == {"registration", "mailer", "confirmation-web", "console"}
        assert f"SMTP server          127.0.0.1:{smtp_port}" in runner.output

        os.kill(children["registration"], signal.SIGKILL)
        assert await runner.wait() == 1
        assert "registration exited with code -9" in runner.output
        await all_gone(children)
    finally:
        await runner.kill()


async def test_a_port_in_use_is_reported_before_anything_starts(run_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", int(run_env["REGISTRATION_PORT"])))
        taken.listen()
        runner = LocalRun(run_env)
        await runner.start()
        try:
            assert await runner.wait() == 1
        finally:
            await runner.kill()
    assert f"port {run_env['REGISTRATION_PORT']} for registration is in use" in runner.output
    assert "REGISTRATION_PORT" in runner.output and not runner.children
