"""How a page writes a date for its reader."""

from __future__ import annotations

from datetime import datetime, timezone


def format_datetime(moment: datetime | None, locale: str) -> str | None:
    """A date and time a reader of that language recognises, always in UTC (we do not know theirs)."""
    if moment is None:
        return None
    moment = moment.astimezone(timezone.utc)
    if locale == "de":
        return moment.strftime("%d.%m.%Y, %H:%M UTC")
    return moment.strftime("%d %b %Y, %H:%M UTC")
