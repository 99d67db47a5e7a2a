"""Rate limits counted through PostgreSQL, shared by several replicas (the pure rules are in
tests/unit/shared/test_ratelimit_rules.py)."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from userreg.shared.ratelimits import (
    LOCAL_SHARE,
    SYNC_SECONDS,
    RateLimit,
    RateLimiter,
)


async def _shared_hits(engine, bucket: str) -> int:
    async with engine.connect() as connection:
        return await connection.scalar(
            text("SELECT coalesce(sum(hits), 0) FROM rate_limit_windows WHERE bucket LIKE :bucket"),
            {"bucket": f"{bucket} %"},
        )


async def test_far_below_its_limit_a_client_is_counted_locally_then_in_postgresql(engine):
    bucket = f"test {uuid.uuid4().hex}"
    limiter = RateLimiter(engine)
    limit = RateLimit(1000, 60)
    for _ in range(100):
        assert await limiter.hit(bucket, "192.0.2.1", limit) is None
    assert await _shared_hits(engine, bucket) < 100  # most were counted here only
    await asyncio.sleep(SYNC_SECONDS + 0.1)
    assert await limiter.hit(bucket, "192.0.2.1", limit) is None
    assert await _shared_hits(engine, bucket) == 101  # the next statement carried them


async def test_near_its_limit_every_request_is_judged_in_postgresql_by_every_replica(engine):
    bucket = f"test {uuid.uuid4().hex}"
    replicas = [RateLimiter(engine) for _ in range(int(1 / LOCAL_SHARE))]
    limit = RateLimit(40, 60)
    allowed = 0
    for n in range(120):
        allowed += await replicas[n % len(replicas)].hit(bucket, "192.0.2.1", limit) is None
    assert allowed == 40
