"""Rate limits shared by every replica, kept in PostgreSQL (SPEC §3.8).

A limit is "N requests per S seconds" (`60/60s`). Counts live in fixed windows of S seconds, one
row per (bucket, client, window), and a request is judged by the sliding-window estimate
`hits in this window + hits in the previous one × the share of it still inside the last S seconds`
(so a client cannot send 2N across a window boundary). One statement counts every request that
arrived while the previous one was under way: an upsert of the current windows that also reads
the previous ones. Every request counts, refused ones included: a client that keeps hammering
stays refused until it pauses.

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

from userreg.shared.batching import Batcher

OFF = "off"
MAX_WINDOW_SECONDS = 86400
_LIMIT = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,6})\s*([smh]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
# IPv6 clients are limited per /64: one host usually has a whole /64 to pick addresses from.
IPV6_CLIENT_PREFIX = 64
PRUNE_EVERY_SECONDS = 60.0

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


# One round trip for every request that arrived while the previous round trip was under way:
# count them in their windows and read the windows before. Windows start on the database's clock,
# so that every replica agrees on them; rows are locked in one order, so concurrent statements of
# several replicas cannot deadlock.
_HITS = text("""
WITH now AS (SELECT extract(epoch FROM clock_timestamp()) AS epoch),
wanted AS (
    SELECT bucket, client, min(seconds) AS seconds, count(*) AS requests
    FROM unnest(CAST(:buckets AS text[]), CAST(:clients AS text[]), CAST(:seconds AS integer[]))
         AS request(bucket, client, seconds)
    GROUP BY bucket, client
),
hit AS (
    INSERT INTO rate_limit_windows (bucket, client, window_start, hits)
    SELECT bucket, client, to_timestamp(floor(now.epoch / seconds) * seconds), requests
    FROM wanted CROSS JOIN now ORDER BY bucket, client
    ON CONFLICT (bucket, client, window_start) DO UPDATE SET hits = rate_limit_windows.hits + excluded.hits
    RETURNING bucket, client, hits, window_start
)
SELECT hit.bucket, hit.client, hit.hits, wanted.requests, coalesce(previous.hits, 0),
       (SELECT epoch FROM now) - extract(epoch FROM hit.window_start)
FROM hit
JOIN wanted ON wanted.bucket = hit.bucket AND wanted.client = hit.client
LEFT JOIN rate_limit_windows AS previous
       ON previous.bucket = hit.bucket AND previous.client = hit.client
      AND previous.window_start = hit.window_start - make_interval(secs => wanted.seconds)
""")
_PRUNE = text("DELETE FROM rate_limit_windows WHERE window_start < now() - make_interval(secs => :keep)")


@dataclass(frozen=True)
class _Hit:
    bucket: str
    client: str
    limit: RateLimit


class RateLimiter:
    """Counts requests per (bucket, client) in PostgreSQL, so every replica sees the same counts.
    Concurrent requests of one process are counted together, in one statement."""

    def __init__(self, engine: AsyncEngine) -> None:
        # Single statements: no BEGIN/COMMIT round trips.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._hits: Batcher[_Hit, float | None] = Batcher(self._count)
        self._pruned_at = time.monotonic()

    async def hit(self, bucket: str, client: str, limit: RateLimit) -> int | None:
        """Count one request; the whole seconds the client must wait when it is over the limit, else
        None. A bucket's window length is part of its name, so a changed limit counts afresh."""
        wait = await self._hits(_Hit(f"{bucket} {limit.seconds}"[:100], client[:64], limit))
        return None if wait is None else math.ceil(wait)

    async def _count(self, hits: list[_Hit]) -> list[float | None]:
        async with self._engine.connect() as connection:
            rows = (await connection.execute(_HITS, {
                "buckets": [hit.bucket for hit in hits], "clients": [hit.client for hit in hits],
                "seconds": [hit.limit.seconds for hit in hits]})).all()
            if time.monotonic() - self._pruned_at > PRUNE_EVERY_SECONDS:
                self._pruned_at = time.monotonic()
                await connection.execute(_PRUNE, {"keep": 2 * MAX_WINDOW_SECONDS})
        counted = {(bucket, client): (total, requests, previous, float(elapsed))
                   for bucket, client, total, requests, previous, elapsed in rows}
        # The requests of one client in this batch were counted in arrival order: the i-th of n saw
        # the window's count before the batch plus i.
        seen: dict[tuple[str, str], int] = {}
        waits = []
        for hit in hits:
            key = (hit.bucket, hit.client)
            total, requests, previous, elapsed = counted[key]
            seen[key] = seen.get(key, 0) + 1
            waits.append(retry_after(hit.limit, total - requests + seen[key], previous, elapsed))
        return waits
