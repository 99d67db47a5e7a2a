"""The end-to-end tests' system: registration, mailer and confirmation-web as real processes (one
set for every test of this package), with the local inbox as their SMTP server.

Every module here carries `pytest.mark.xdist_group("e2e")`, so one worker runs them all and the
package's one system serves every test."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import links
from tests.support.system import System
from userreg.shared.settings import Settings

ADMIN_TIMEOUT = 60.0


@pytest.fixture(scope="package")
def system(settings: Settings) -> Iterator[System]:
    running = System(settings, "e2e")
    running.start()
    yield running
    running.stop()
    # Everything the tests made the services do, the faults included: none of it logged a secret.
    assert not running.leaks(), running.leaks()


@pytest.fixture
def admin(system: System):
    """`await admin("app", "set", APP, "registrationEnabled=false")`: the `userreg` command, run as an
    operator runs it against the system's database; returns what it printed as JSON."""

    async def run(*args: str) -> Any:
        env = {
            **os.environ,
            "DATABASE_URL": system.settings.database_dsn,
            "AMQP_URL": system.settings.amqp_dsn,
            "EVENTS_EXCHANGE": system.settings.events_exchange,
        }
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "userreg"),
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), ADMIN_TIMEOUT)
        assert process.returncode == 0, f"userreg {' '.join(args)} failed: {err.decode()}"
        return json.loads(out) if out.strip() else None

    return run


@pytest.fixture
def age_links(sessions):
    """`await age_links(user_id, seconds)`: the user's links were issued `seconds` earlier than they
    were, so they expire (and the resend cool-down passes) without the test waiting for it."""

    async def age(user_id: str, seconds: float) -> None:
        await links.age_links(sessions, user_id, seconds, expire=True)

    return age


@pytest.fixture
def age_reset_links(sessions):
    """`await age_reset_links(user_id, seconds)`: as `age_links`, for the user's password-reset links."""

    async def age(user_id: str, seconds: float) -> None:
        await links.age_reset_links(sessions, user_id, seconds, expire=True)

    return age
