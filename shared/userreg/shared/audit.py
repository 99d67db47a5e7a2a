"""The audit log (services/console/README.md): every change made in the console or with the `userreg` command, written
in the same transaction as the change, so that there is no change without its entry and no entry
without its change.

An actor names who: `operator:<email>` for a console operator, `cli:<user>@<host>` for the command.
`details` says what, in plain values; never a password, a hash, a token or an API key.
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import AuditEntry

# Keys that never enter an entry's details, whatever a caller passes.
SECRET_DETAILS = frozenset(
    {"password", "password_hash", "token", "rest_api_key", "server_api_key", "restApiKey", "serverApiKey"}
)


def operator_actor(email: str) -> str:
    return f"operator:{email}"


def command_actor() -> str:
    """The person running `userreg` on this machine, as the operating system knows them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's arbitrary user)
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"


def record(session: AsyncSession, actor: str, action: str, app_id: str | None = None, **details: Any) -> AuditEntry:
    """Add an entry to the caller's transaction (`action` like "app.set", "user.create")."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        app_id=app_id,
        details={key: value for key, value in details.items() if key not in SECRET_DETAILS},
    )
    session.add(entry)
    return entry


async def entries(
    session: AsyncSession, *, app_id: str | None = None, before_id: int | None = None, limit: int = 100
) -> list[AuditEntry]:
    """The newest entries first (of one app when `app_id` is given); page on with `before_id`."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if app_id is not None:
        query = query.where(AuditEntry.app_id == app_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list(await session.scalars(query))


def entry_as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "appId": entry.app_id,
        "details": entry.details,
    }
