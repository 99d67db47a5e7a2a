"""When a session (a `user-token`) ends, and when its use is worth writing down (docs/api.md,
Sessions and password recovery).

A session ends `sessionTtl` seconds after its last use. Writing the time of every use would add a
write to every request that carries the token; instead a use is recorded only when the recorded
one is older than a tenth of the TTL, and at most a minute old: a session may so end up to that
long before `sessionTtl` has passed since its very last use, never later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

REFRESH_FRACTION = 0.1
MAX_REFRESH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionInfo:
    """A session as an operator sees it: never its token or the token's digest."""

    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    expired: bool


def expires_at(last_used_at: datetime, ttl_seconds: int) -> datetime:
    return last_used_at + timedelta(seconds=ttl_seconds)


def is_expired(last_used_at: datetime, ttl_seconds: int, now: datetime) -> bool:
    return now >= expires_at(last_used_at, ttl_seconds)


def refresh_interval(ttl_seconds: int) -> timedelta:
    """How old the recorded last use may get before a use is written down again."""
    return min(timedelta(seconds=ttl_seconds * REFRESH_FRACTION), MAX_REFRESH_INTERVAL)


def needs_refresh(last_used_at: datetime, ttl_seconds: int, now: datetime) -> bool:
    return now - last_used_at >= refresh_interval(ttl_seconds)


def session_info(created_at: datetime, last_used_at: datetime, ttl_seconds: int, now: datetime) -> SessionInfo:
    return SessionInfo(
        created_at, last_used_at, expires_at(last_used_at, ttl_seconds), is_expired(last_used_at, ttl_seconds, now)
    )
