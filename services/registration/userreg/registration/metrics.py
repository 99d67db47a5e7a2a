"""Prometheus metrics of the registration service (served at `GET /metrics`).

Defined once per process (prometheus-client keeps them in its global registry); names carry the
service so several userreg services may share a process without clashing.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.registration.repository import outbox_backlog

logger = logging.getLogger(__name__)

REQUESTS = Counter(
    "userreg_registration_requests_total",
    "HTTP requests answered, by route template, method, HTTP status and API code (0 = success)",
    ["route", "method", "status", "code"],
)
LATENCY = Histogram(
    "userreg_registration_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OUTBOX_BACKLOG = Gauge(
    "userreg_registration_outbox_backlog",
    "Events committed to the outbox and not yet published to RabbitMQ, estimated at scrape time as "
    "max(id) - min(id) + 1 over the outbox's primary key (two index lookups, whatever the backlog; "
    "0 when it is empty, else an upper bound: ids in between whose rows were rolled back or already "
    "published still count); NaN when the database cannot be read",
)
# A scrape must answer promptly, also while the database is slow or away.
BACKLOG_TIMEOUT_SECONDS = 2.0


async def scrape(engine: AsyncEngine) -> bytes:
    """The metrics in Prometheus' text format, with the outbox backlog estimated now."""
    try:
        async with asyncio.timeout(BACKLOG_TIMEOUT_SECONDS):
            OUTBOX_BACKLOG.set(await outbox_backlog(engine))
    except Exception as error:  # a scrape must still answer while the database is away
        logger.warning("cannot read the outbox backlog: %s", type(error).__name__)
        OUTBOX_BACKLOG.set(float("nan"))
    return generate_latest(REGISTRY)
