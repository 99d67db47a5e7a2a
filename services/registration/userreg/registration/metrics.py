"""Prometheus metrics of the registration service (served at `GET /metrics`).

Defined once per process (prometheus-client keeps them in its global registry); names carry the
service so several userreg services may share a process without clashing.
"""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from userreg.shared.db.models import OutboxEvent

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
    "Events committed to the outbox and not yet published to RabbitMQ (read at scrape time; NaN when "
    "the database cannot be read)",
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


async def scrape(engine: AsyncEngine) -> bytes:
    """The metrics in Prometheus' text format, with the outbox backlog read now."""
    try:
        async with engine.connect() as connection:
            OUTBOX_BACKLOG.set(await connection.scalar(select(func.count()).select_from(OutboxEvent)) or 0)
    except Exception as error:  # a scrape must still answer while the database is away
        logger.warning("cannot read the outbox backlog: %s", type(error).__name__)
        OUTBOX_BACKLOG.set(float("nan"))
    return generate_latest(REGISTRY)
