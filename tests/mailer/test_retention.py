"""Retention: old records of sent emails and replayed dead letters go, nothing else does."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from userreg.mailer.retention import prune
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery

NOW = datetime.now(timezone.utc)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=3)


async def test_prune_deletes_only_old_sent_records_and_old_replayed_dead_letters(engine, sessions, make_app):
    app = await make_app()
    deliveries = {
        "old sent": dict(status=DeliveryStatus.SENT, sent_at=OLD),
        "recent sent": dict(status=DeliveryStatus.SENT, sent_at=RECENT),
        "old failed": dict(status=DeliveryStatus.FAILED, created_at=OLD),
        "old claim": dict(status=DeliveryStatus.SENDING, created_at=OLD, claimed_until=OLD),
    }
    dead_letters = {
        "old replayed": dict(dead_lettered_at=OLD, replayed_at=OLD),
        "recent replayed": dict(dead_lettered_at=OLD, replayed_at=RECENT),
        "old waiting": dict(dead_lettered_at=OLD, replayed_at=None),
    }
    ids = {name: str(uuid.uuid4()) for name in [*deliveries, *dead_letters]}
    async with sessions() as session, session.begin():
        for name, columns in deliveries.items():
            session.add(MailDelivery(event_id=ids[name], template="confirmation", app_id=app.app_id,
                                     attempts=1, **columns))
        for name, columns in dead_letters.items():
            session.add(DeadLetter(event_id=ids[name], app_id=app.app_id, reason="550", payload={},
                                   **columns))

    pruned = await prune(engine, retention_days=30)

    assert pruned.deliveries >= 1 and pruned.dead_letters >= 1  # other tests' rows are all recent
    async with sessions() as session:
        kept_deliveries = set(await session.scalars(
            select(MailDelivery.event_id).where(MailDelivery.app_id == app.app_id)))
        kept_dead_letters = set(await session.scalars(
            select(DeadLetter.event_id).where(DeadLetter.app_id == app.app_id)))
    assert kept_deliveries == {ids["recent sent"], ids["old failed"], ids["old claim"]}
    assert kept_dead_letters == {ids["recent replayed"], ids["old waiting"]}
