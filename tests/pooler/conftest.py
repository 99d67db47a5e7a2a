"""The whole system with its database connections going through a PgBouncer in transaction
pooling mode (`DATABASE_TRANSACTION_POOLER=true`), and what needs a session of its own (the
LISTEN loops, the migrations) going straight to PostgreSQL (`DATABASE_DIRECT_URL`).

Every module here carries `pytest.mark.xdist_group("pooler")`: one worker runs them, with one
PgBouncer and one system."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from tests.support.pgbouncer import BINARY, PgBouncer
from tests.support.system import System
from userreg.shared.settings import Settings


@pytest.fixture(scope="package")
def bouncer(settings: Settings) -> Iterator[PgBouncer]:
    if not os.path.exists(BINARY):
        pytest.skip(f"{BINARY} is missing: `make test` installs Debian's pgbouncer")
    with PgBouncer.in_front_of(settings.database_dsn) as running:
        yield running


@pytest.fixture(scope="package")
def pooled_settings(settings: Settings, bouncer: PgBouncer) -> Settings:
    return settings.model_copy(
        update={
            "database_url": SecretStr(bouncer.url_of(settings.database_dsn)),
            "database_transaction_pooler": True,
            "database_direct_url": settings.database_url,
        }
    )


@pytest.fixture(scope="package")
def system(pooled_settings: Settings) -> Iterator[System]:
    running = System(pooled_settings, "pooler")
    running.start()
    yield running
    running.stop()
    assert not running.leaks(), running.leaks()
