"""The registration service's layer as the `userreg` command uses it: opened on the configured
database with one argon2id worker (a command acts on one user at a time), an app found by appId or
name, and the API's refusals as the command's errors."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from userreg.admin.database import open_database, open_engine
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.registration.operations import ApiError, Registrar, Tenant, open_registrar
from userreg.shared.settings import Settings


def refused(error: ApiError) -> CommandFailed | UsageError:
    """The registration API's error as the command's: a 400 means the operator's input was wrong
    (exit 2), anything else that the data did not allow it (exit 1). The code is kept."""
    kind = UsageError if error.http_status == 400 else CommandFailed
    return kind(f"{error.code} {error.message}")


@contextlib.asynccontextmanager
async def registrar(settings: Settings) -> AsyncIterator[Registrar]:
    """The registration service layer on the configured (checked) database, with one argon2id
    worker: a command creates one user at a time."""
    async with open_engine(settings) as engine, open_registrar(settings, engine, hash_workers=1) as service:
        yield service


async def tenant_of(service: Registrar, settings: Settings, ref: str) -> Tenant:
    """The app named by appId or name, with its schema's rules."""
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, ref)
    return await service.load_tenant(app.app_id)
