"""A page's dates and waits are written by Babel in the page's language, always in UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from userreg.confirmation_web.rules.dates import format_datetime, format_wait

MOMENT = datetime(2030, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=2)))  # 01:04 UTC


def test_a_moment_in_each_language_in_utc():
    assert format_datetime(MOMENT, "de") == "02.01.2030, 01:04 UTC"
    assert format_datetime(MOMENT, "fr") == "2 janv. 2030, 01:04 UTC"
    english = format_datetime(MOMENT, "en")
    assert english.startswith("Jan 2, 2030, 1:04") and english.endswith("AM UTC")
    assert format_datetime(None, "en") is None


def test_a_wait_in_each_language():
    assert [format_wait(seconds, "en") for seconds in (1, 30, 60)] == ["1 second", "30 seconds", "60 seconds"]
    assert [format_wait(seconds, "de") for seconds in (1, 30)] == ["1 Sekunde", "30 Sekunden"]
    # French puts a no-break space between the number and its unit.
    assert [format_wait(seconds, "fr") for seconds in (1, 30)] == ["1\xa0seconde", "30\xa0secondes"]
    assert format_wait(180, "en") == "3 minutes"  # from a minute and a half on, in minutes
    assert format_wait(None, "de") is None
