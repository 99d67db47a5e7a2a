"""How a page writes a date, a time and a wait for its reader: in the page's language, through
Babel's data for that locale (no language is special-cased here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from babel.dates import format_date, format_time, format_timedelta, get_datetime_format

# A wait is said in seconds up to a minute and a half, then in (rounded) minutes.
SECONDS_THRESHOLD = 1.5


def format_datetime(moment: datetime | None, locale: str) -> str | None:
    """A date and time a reader of that language recognises ("Jan 2, 2030, 3:04 AM UTC",
    "02.01.2030, 03:04 UTC", "2 janv. 2030, 03:04 UTC"): the locale's medium date and short time,
    joined as the locale joins them, always in UTC (we do not know the reader's zone)."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    date = format_date(moment, "medium", locale=locale)
    time = format_time(moment, "short", tzinfo=UTC, locale=locale)
    # As Babel's own format_datetime joins them: "{1}, {0}", quotes around literal words dropped.
    pattern = str(get_datetime_format("medium", locale=locale)).replace("'", "")
    return pattern.replace("{0}", time).replace("{1}", date) + " UTC"


def format_wait(seconds: int | None, locale: str) -> str | None:
    """How long to wait, in words of that language ("1 second", "30 Sekunden", "2 minutes")."""
    if seconds is None:
        return None
    return format_timedelta(timedelta(seconds=seconds), threshold=SECONDS_THRESHOLD, locale=locale)
