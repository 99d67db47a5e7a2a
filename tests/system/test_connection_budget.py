"""The connection budget: three registration, two confirmation-web and two mailer replicas and the
console, each opening every connection it can, plus an admin command, fit into PostgreSQL's default
max_connections with room to spare. The counts come from the settings compose gives each service
and from the code; a scan of the code makes sure no place that opens connections is left out."""

from __future__ import annotations

import re
from pathlib import Path

from tests.system.test_compose import COMPOSE
from userreg.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

MAX_CONNECTIONS = 100  # PostgreSQL's default, and so the compose postgres image's
# superuser_reserved_connections (3) come out of max_connections too; and an operator's psql, a
# monitoring agent, a backup.
HEADROOM = 10
REPLICAS = {"registration": 3, "confirmation-web": 2, "mailer": 2, "console": 1}
LISTEN = 1  # a LISTEN loop (shared/runtime/listen.py) holds one connection of its own


def engine(settings: Settings) -> int:
    """`create_engine`'s pool: its connections, and the overflow it opens under load."""
    return settings.database_pool_size + settings.database_max_overflow


def registration(settings: Settings) -> int:
    # Its engine (app.py), the outbox relay's LISTEN loop, the tenant cache's LISTEN loop.
    return engine(settings) + LISTEN + LISTEN


def confirmation_web(settings: Settings) -> int:
    # Its engine (app.py), the read pool of the link lookups (repository.py), the outbox relay's LISTEN.
    return engine(settings) + settings.database_pool_size + LISTEN


def mailer(settings: Settings) -> int:
    # Its engine (app.py); the consumer and the retention task use it.
    return engine(settings)


def console(settings: Settings) -> int:
    # Its engine (app.py): sessions, the sign-in rate limiter and the users it creates share it.
    return engine(settings)


# An admin command opens one engine of one connection (admin/database.py); `dead-letters` opens a
# second one of its own (mailer/dead_letters.py); `migrate` one at a time (the server's `postgres`
# database to create it, then the migrations).
ADMIN = 2

CONNECTIONS = {"registration": registration, "confirmation-web": confirmation_web, "mailer": mailer, "console": console}

# Every place that opens PostgreSQL connections, with its number of call sites. A new one (an
# engine, a pool, a LISTEN loop) must be counted above before it is added here.
OPENING = re.compile(r"\b(create_engine|create_async_engine|asyncpg\.connect|asyncpg\.create_pool|Listener)\(")
OPENERS = {
    "shared/userreg/shared/db/engine.py": 2,  # create_engine's engine; ensure/drop_database's connection
    "shared/userreg/shared/migrations/env.py": 1,  # `userreg migrate`: one connection (NullPool)
    "shared/userreg/shared/runtime/listen.py": 1,  # the LISTEN loop's connection
    "shared/userreg/shared/outbox.py": 1,  # the relay's LISTEN loop
    "services/registration/userreg/registration/tenants.py": 1,  # the tenant cache's LISTEN loop
    "services/registration/userreg/registration/app.py": 1,  # the service's engine
    "services/confirmation-web/userreg/confirmation_web/app.py": 1,  # the service's engine
    "services/confirmation-web/userreg/confirmation_web/repository.py": 1,  # the read pool
    "services/mailer/userreg/mailer/app.py": 1,  # the service's engine
    "services/console/userreg/console/app.py": 1,  # the service's engine
    "services/mailer/userreg/mailer/dead_letters.py": 2,  # `userreg dead-letters list/replay`
    "admin/userreg/admin/database.py": 1,  # an admin command's engine
}
ONE_CONNECTION = ("services/mailer/userreg/mailer/dead_letters.py", "admin/userreg/admin/database.py")


def service_settings(name: str) -> Settings:
    """The settings a service runs with in compose: the defaults, and what compose sets."""
    environment = COMPOSE["services"][name]["environment"]
    return Settings.model_validate({key.lower(): value for key, value in environment.items()})


def budget() -> dict[str, int]:
    """Connections each service's replica can hold at once."""
    return {name: count(service_settings(name)) for name, count in CONNECTIONS.items()}


def test_every_replica_and_an_admin_command_fit_into_max_connections_with_headroom():
    per_replica = budget()
    total = sum(REPLICAS[name] * per_replica[name] for name in REPLICAS) + ADMIN
    assert total <= MAX_CONNECTIONS - HEADROOM, (
        f"{per_replica} × {REPLICAS} + admin {ADMIN} = {total} connections: more than "
        f"max_connections {MAX_CONNECTIONS} less {HEADROOM} headroom"
    )


def test_the_defaults_are_the_figures_the_readme_gives():
    # The README's "Connection budget" quotes these numbers; change both together.
    assert budget() == {"registration": 9, "confirmation-web": 13, "mailer": 7, "console": 7}
    assert sum(REPLICAS[name] * count for name, count in budget().items()) + ADMIN == 76


def test_no_place_opens_database_connections_that_the_budget_does_not_count():
    found: dict[str, int] = {}
    sources = (path for folder in ("shared", "services", "admin") for path in ROOT.glob(f"{folder}/**/*.py"))
    for path in sorted(sources):
        if ".venv" in path.parts:
            continue
        text = path.read_text()
        calls = [match for match in OPENING.finditer(text) if not text[: match.start()].endswith("def ")]
        if calls:
            found[str(path.relative_to(ROOT))] = len(calls)
    assert found == OPENERS, "a place that opens PostgreSQL connections changed: count it in the budget"
    # The engines of one-off commands hold one connection, not a pool of the services' size.
    for relative in ONE_CONNECTION:
        for line in (ROOT / relative).read_text().splitlines():
            if OPENING.search(line):
                assert "pool_size=1, max_overflow=0" in line, f"{relative}: {line.strip()}"
    # The services' engines are sized by the settings alone.
    for relative in (
        "services/registration/userreg/registration/app.py",
        "services/confirmation-web/userreg/confirmation_web/app.py",
        "services/mailer/userreg/mailer/app.py",
        "services/console/userreg/console/app.py",
    ):
        for line in (ROOT / relative).read_text().splitlines():
            if OPENING.search(line):
                assert "pool_size" not in line and "max_overflow" not in line, f"{relative}: {line.strip()}"
