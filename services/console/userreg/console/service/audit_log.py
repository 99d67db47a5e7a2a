"""The audit log page (services/console/README.md): entries newest first, of every app or one, a page at a time
(`shared.audit.entries`, which `userreg audit list` reads too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.repository import apps as app_repository
from userreg.console.rules.audit_view import PAGE_SIZE, detail_pairs
from userreg.shared import audit


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    actor: str
    action: str
    app_id: str | None
    app_name: str | None  # None for no app, or an app deleted since
    details: list[tuple[str, str]]


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    apps: dict[str, str]  # appId → name, for the filter
    app_id: str | None
    next_before: int | None  # the cursor of the next (older) page, None on the last one


class AuditLog:
    def __init__(self, sessions: async_sessionmaker) -> None:
        self._sessions = sessions

    async def page(self, app_id: str | None, before: int | None) -> AuditPage:
        async with self._sessions() as session:
            names = await app_repository.app_names(session)
            entries = await audit.entries(session, app_id=app_id, before_id=before, limit=PAGE_SIZE + 1)
        rows = [
            AuditRow(
                entry.id,
                entry.at,
                entry.actor,
                entry.action,
                entry.app_id,
                names.get(entry.app_id) if entry.app_id else None,
                detail_pairs(entry.details),
            )
            for entry in entries[:PAGE_SIZE]
        ]
        more = len(entries) > PAGE_SIZE
        return AuditPage(rows, names, app_id, rows[-1].id if more and rows else None)
