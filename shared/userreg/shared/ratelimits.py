"""Rate limits shared by every replica, kept in PostgreSQL (the README's Security section).

A limit is "N requests per S seconds" (`60/60s`). Counts live in fixed windows of S seconds, one
row per (bucket, client, window), and a request is judged by the sliding-window estimate
`hits in this window + hits in the previous one × the share of it still inside the last S seconds`
(so a client cannot send 2N across a window boundary). Every request counts, refused ones included:
a client that keeps hammering stays refused until it pauses.

Counting in PostgreSQL is one statement (an upsert of the current window that also reads the
previous one), and a statement per request would cost a good part of a cheap request. So a
replica that saw the shared count less than `SYNC_SECONDS` ago lets a client use up to
`LOCAL_SHARE` of its limit on its own, counting locally, and adds those hits to the shared count
with the client's next statement. Every request beyond that share, and every request after
`SYNC_SECONDS`, is counted and judged in PostgreSQL. So with up to 1 / `LOCAL_SHARE` replicas a
client never gets more than its limit, and a client far below its limit costs one statement per
`SYNC_SECONDS` per replica.

The parsing of limits and of client addresses is pure and lives here too.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.shared.db.engine import autocommit

OFF = "off"
MAX_WINDOW_SECONDS = 86400
_LIMIT = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,6})\s*([smh]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
# IPv6 clients are limited per /64: one host usually has a whole /64 to pick addresses from.
IPV6_CLIENT_PREFIX = 64
PRUNE_EVERY_SECONDS = 60.0
# A replica judges a client on its own for at most this long after it last saw the shared count,
# and only while the client has used less than this share of its limit (see the module docstring).
SYNC_SECONDS = 0.5
LOCAL_SHARE = 0.25
# Clients a replica remembers between two prunings of its local counts.
MAX_LOCAL_CLIENTS = 10_000

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class RateLimit:
    requests: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds}s"


def parse_rate_limit(value: str) -> RateLimit | None:
    """`"60/60s"` (also `m` and `h` units) → RateLimit; `"off"` → None; ValueError otherwise."""
    if value.strip().lower() == OFF:
        return None
    match = _LIMIT.fullmatch(value)
    if match is None:
        raise ValueError(f'a rate limit is "REQUESTS/SECONDSs" (e.g. 60/60s, 1000/1h) or "off", got {value!r}')
    requests, amount, unit = int(match[1]), int(match[2]), match[3].lower()
    seconds = amount * _UNIT_SECONDS[unit]
    if requests < 1 or not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise ValueError("a rate limit needs at least 1 request per window of 1 s to 24 h")
    return RateLimit(requests, seconds)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """Who is asking: the TCP peer, unless the peer is a trusted proxy; then the right-most address
    of `X-Forwarded-For` that is not itself a trusted proxy (addresses left of it are whatever the
    client chose to send). Malformed entries end the walk: what is behind them cannot be trusted."""
    address = _ip(peer)
    if address is None:
        return peer or "unknown"
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    while _is_trusted(address, trusted) and hops:
        previous = _ip(hops.pop())
        if previous is None:
            break
        address = previous
    return str(address)


def client_key(address: str) -> str:
    """The key a client is counted under: its IPv4 address, or its IPv6 /64 network."""
    ip = _ip(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is None:
        return str(ipaddress.ip_network(f"{ip}/{IPV6_CLIENT_PREFIX}", strict=False))
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ip.ipv4_mapped)
    return address[:64]


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip().split("%", 1)[0])
    except ValueError:
        return None


def _is_trusted(address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def retry_after(limit: RateLimit, current: int, previous: int, elapsed: float) -> float | None:
    """Seconds until the client may send again, or None when this request is within the limit.
    `current`: hits in this window including this request; `previous`: hits in the window before;
    `elapsed`: seconds since this window started."""
    weight = max(0.0, 1.0 - elapsed / limit.seconds)
    if current + previous * weight <= limit.requests:
        return None
    if current >= limit.requests or previous == 0:
        return limit.seconds - elapsed  # only the next window lets it through
    # The previous window's share shrinks linearly: wait until current + previous × weight fits.
    fits_at_weight = (limit.requests - current) / previous
    return max(1.0, (1.0 - fits_at_weight) * limit.seconds - elapsed)


# One round trip: count this request (and $4 − 1 counted locally before it) in its window and read
# the window before. The window's start
# comes from the database's clock so that every replica agrees on it. Sent through the driver
# itself (a prepared statement, $1 bucket, $2 client, $3 window seconds): it runs on every request
# a public key can make, and the SQL layer's own work per call would be most of its cost.
_HIT = """
WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS epoch),
window_start AS (SELECT to_timestamp(floor(epoch / $3::integer) * $3::integer) AS start, epoch FROM now),
hit AS (
    INSERT INTO rate_limit_windows (bucket, client, window_start, hits)
    SELECT $1::text, $2::text, start, $4::integer FROM window_start
    ON CONFLICT (bucket, client, window_start) DO UPDATE SET hits = rate_limit_windows.hits + $4::integer
    RETURNING hits, window_start
)
SELECT hit.hits,
       coalesce((SELECT previous.hits FROM rate_limit_windows AS previous
                 WHERE previous.bucket = $1::text AND previous.client = $2::text
                   AND previous.window_start = hit.window_start - make_interval(secs => $3::integer)), 0),
       (SELECT epoch FROM window_start) - extract(epoch FROM hit.window_start)
FROM hit
"""
_PRUNE = text("DELETE FROM rate_limit_windows WHERE window_start < now() - make_interval(secs => :keep)")


@dataclass
class _Seen:
    """A client's count as this replica last saw it in PostgreSQL, and what it counted since."""

    current: int
    previous: int
    elapsed: float  # seconds into the window, at `synced`
    synced: float  # time.monotonic()
    pending: int = 0

    def allows_locally(self, limit: RateLimit, now: float) -> bool:
        age = now - self.synced
        if age >= SYNC_SECONDS or self.elapsed + age >= limit.seconds:
            return False
        weight = max(0.0, 1.0 - (self.elapsed + age) / limit.seconds)
        return self.current + self.pending + 1 + self.previous * weight <= limit.requests * LOCAL_SHARE


class RateLimiter:
    """Counts requests per (bucket, client) in PostgreSQL, so every replica sees the same counts."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Single statements: no BEGIN/COMMIT round trips.
        self._engine = autocommit(engine)
        self._pruned_at = time.monotonic()
        self._seen: dict[tuple[str, str], _Seen] = {}

    async def hit(self, bucket: str, client: str, limit: RateLimit) -> int | None:
        """Count one request; the whole seconds the client must wait when it is over the limit, else
        None. A bucket's window length is part of its name, so a changed limit counts afresh."""
        key = (f"{bucket} {limit.seconds}"[:100], client[:64])
        seen = self._seen.get(key)
        if seen is not None and seen.allows_locally(limit, time.monotonic()):
            seen.pending += 1
            return None
        pending = seen.pending if seen is not None else 0
        if seen is not None:
            seen.pending = 0  # taken into this statement; counted again should it fail
        try:
            async with self._engine.begin() as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                assert driver is not None  # a connection checked out of the pool is open
                current, previous, elapsed = await driver.fetchrow(_HIT, *key, limit.seconds, pending + 1)
                if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                    self._pruned_at = time.monotonic()
                    await connection.execute(_PRUNE, {"keep": 2 * MAX_WINDOW_SECONDS})
        except BaseException:
            if seen is not None:
                seen.pending += pending
            raise
        self._remember(key, _Seen(current, previous, float(elapsed), time.monotonic()))
        wait = retry_after(limit, current, previous, float(elapsed))
        return None if wait is None else math.ceil(wait)

    def _remember(self, key: tuple[str, str], seen: _Seen) -> None:
        if len(self._seen) >= MAX_LOCAL_CLIENTS:
            # What was seen longer ago than the sync interval is never judged locally again.
            now = time.monotonic()
            self._seen = {k: v for k, v in self._seen.items() if now - v.synced < SYNC_SECONDS or v.pending}
        earlier = self._seen.get(key)
        if earlier is not None:
            seen.pending += earlier.pending  # counted here while the statement was under way
        self._seen[key] = seen
