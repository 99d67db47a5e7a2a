"""The audit entries of the `userreg` command (services/console/README.md, `shared.audit`): who ran
it (`cli:<user>@<host>`), what it changed, which app.

Where the command owns the transaction of its change (apps, schema, templates, operators), the entry
is added to that transaction with `record`: no change without its entry. Where the change is made in
a service's own transaction (users through `registration.operations`, dead letters through
`mailer.operations`), `record_after` writes the entry in a transaction of its own right after the
change succeeded."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from userreg.admin.database import open_database
from userreg.shared import audit
from userreg.shared.settings import Settings


def record(session: AsyncSession, action: str, app_id: str | None = None, **details: Any) -> None:
    """An entry of the person running the command, in the caller's transaction."""
    audit.record(session, audit.command_actor(), action, app_id, **details)


async def record_after(settings: Settings, action: str, app_id: str | None = None, **details: Any) -> None:
    """An entry of the person running the command, in a transaction of its own (the change itself
    was committed by the service that made it)."""
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        record(session, action, app_id, **details)
