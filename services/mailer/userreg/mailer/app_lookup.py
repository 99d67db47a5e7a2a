"""The app an event belongs to and the template sources its emails use, through a short-lived
cache. Most events of a busy mailer belong to a few apps; reading both for every email was most of
its database work."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.mailer.repository import AppInfo, load_app
from userreg.mailer.rules.policy import DATABASE, PermanentFailure, TransientFailure
from userreg.shared.db.errors import RETRYABLE_DATABASE_ERRORS
from userreg.shared.templates import Email, TemplateSource, TemplateStore, pick_locale

# How long an app's settings and templates are reused before they are read again. An operator's
# change (a template override, the welcome email switched on) takes effect within this time,
# without a restart.
APP_CACHE_SECONDS = 2.0
APP_CACHE_SIZE = 1000


@dataclass
class _AppEntry:
    app: AppInfo
    sources: dict[tuple[str, str], TemplateSource]
    expires: float


class AppLookup:
    """The app an event belongs to and the template sources it uses, through a short-lived cache."""

    def __init__(self, sessions: async_sessionmaker, templates: TemplateStore, ttl: float = APP_CACHE_SECONDS) -> None:
        self._sessions = sessions
        self._templates = templates
        self._ttl = ttl
        self._entries: dict[str, _AppEntry] = {}

    async def sources(
        self, app_id: str, names: Callable[[AppInfo], tuple[str, ...]], locale: str | None
    ) -> tuple[AppInfo, dict[str, TemplateSource]]:
        """The app and the sources of the emails `names(app)` picks (by their plain names, as
        `emails_for` gives them); `PermanentFailure` for an app that does not exist,
        `TransientFailure` when the database cannot be read."""
        locale = pick_locale(locale)
        now = time.monotonic()
        entry = self._entries.get(app_id)
        if entry is not None and entry.expires < now:
            entry = None
        try:
            if entry is None:
                entry = await self._load_app(app_id, now)
            wanted = names(entry.app)
            missing = [name for name in wanted if (name, locale) not in entry.sources]
            if missing:
                async with self._sessions() as session:
                    for name in missing:
                        source = await self._templates.source(session, app_id, Email(name), locale)
                        entry.sources[(name, locale)] = source
        except RETRYABLE_DATABASE_ERRORS as error:
            raise TransientFailure(DATABASE, f"cannot read the app or its templates: {type(error).__name__}") from error
        return entry.app, {name: entry.sources[(name, locale)] for name in wanted}

    def forget(self, app_id: str) -> None:
        """Read the app anew next time (after its template failed: the operator's fix and replay
        must not meet the broken copy)."""
        self._entries.pop(app_id, None)

    async def _load_app(self, app_id: str, now: float) -> _AppEntry:
        async with self._sessions() as session:
            app = await load_app(session, app_id)
        if app is None:
            raise PermanentFailure("unknown_app", f"app {app_id} does not exist")
        if len(self._entries) >= APP_CACHE_SIZE:
            self._entries = {key: value for key, value in self._entries.items() if value.expires >= now}
        entry = self._entries[app_id] = _AppEntry(app=app, sources={}, expires=now + self._ttl)
        return entry
