"""Operator sessions: how long one lasts unused, and when its last use is written down."""

from __future__ import annotations

from datetime import datetime, timedelta

# A session unused this long is over: the operator signs in again.
IDLE_LIMIT = timedelta(hours=8)
# The last use is written at most this often (not one write per page view).
TOUCH_EVERY = timedelta(minutes=1)
COOKIE = "userreg_console"


def idle_since(now: datetime) -> datetime:
    """Sessions last used before this moment are over."""
    return now - IDLE_LIMIT


def needs_touch(last_used_at: datetime, now: datetime) -> bool:
    return now - last_used_at >= TOUCH_EVERY
