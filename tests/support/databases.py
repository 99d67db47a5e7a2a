"""A database of a test's (or a test session's) own: created, migrated, and dropped afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

from sqlalchemy.engine import make_url

from userreg.shared.db import drop_database, ensure_database, migrate


@contextlib.contextmanager
def migrated_database(server_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, migrated database named `<prefix>_<random>` on the server of `server_url`."""
    url = make_url(server_url).set(database=f"{prefix}_{uuid.uuid4().hex[:10]}")
    rendered = url.render_as_string(hide_password=False)
    asyncio.run(ensure_database(rendered))
    try:
        asyncio.run(migrate(rendered))
        yield rendered
    finally:
        asyncio.run(drop_database(rendered))
