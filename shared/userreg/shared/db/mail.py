"""The mailer's tables: what was sent for which event, and what could never be sent."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Enum, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from userreg.shared.db.models import Base


class DeliveryStatus(str, enum.Enum):
    # A mailer claimed the email and may be talking to the SMTP server right now (until `claimed_until`).
    SENDING = "SENDING"
    # The SMTP server accepted it: never send it again.
    SENT = "SENT"
    # The last attempt failed; the next delivery of the event may claim it again.
    FAILED = "FAILED"


class MailDelivery(Base):
    """One email of one event (an event can cause two: confirmation and welcome).

    The row is claimed before sending, so two mailers that receive the same event (a duplicate
    publish, a redelivery after a lost connection) never both send it; `SENT` makes a redelivered
    event's email a no-op.
    """

    __tablename__ = "mail_deliveries"

    event_id: Mapped[str] = mapped_column(UUID(as_uuid=False), primary_key=True)
    template: Mapped[str] = mapped_column(String(100), primary_key=True)
    app_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[DeliveryStatus] = mapped_column(Enum(DeliveryStatus, name="mail_delivery_status"))
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # What the mailer's retention prunes, found without a scan.
    __table_args__ = (Index("ix_mail_deliveries_sent_at", "sent_at", postgresql_where=text("status = 'SENT'")),)


class DeadLetter(Base):
    """An event the mailer gave up on (also parked in the dead-letter queue, from where it is replayed).

    Keyed by event id: an event dead-lettered again after a replay updates its row. The payload is
    stored with confirmation tokens redacted; the replayable original stays in the queue only.
    """

    __tablename__ = "dead_letters"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_type: Mapped[str | None] = mapped_column(String(100))
    app_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    dead_lettered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    times_dead_lettered: Mapped[int] = mapped_column(Integer, server_default=text("1"))
    replayed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_dead_letters_dead_lettered_at", "dead_lettered_at"),
        Index("ix_dead_letters_replayed_at", "replayed_at", postgresql_where=text("replayed_at IS NOT NULL")),
    )
