"""What every benchmark needs: a database of its own, created, migrated and dropped afterwards,
and a clean stop of the service processes it started."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator

from sqlalchemy.engine import make_url

from userreg.shared.db import drop_database, ensure_database, migrate
from userreg.shared.settings import Settings


@contextlib.asynccontextmanager
async def scratch_database(base: Settings, name: str) -> AsyncIterator[str]:
    """The URL of a freshly migrated database called `name` on `base`'s server, dropped on exit."""
    database_url = make_url(base.database_dsn).set(database=name).render_as_string(hide_password=False)
    await ensure_database(database_url)
    try:
        await migrate(database_url)
        yield database_url
    finally:
        await drop_database(database_url)


async def stop(process: asyncio.subprocess.Process, timeout: float = 30.0) -> None:
    """SIGTERM, as an orchestrator would; SIGKILL if the process does not exit in time."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
