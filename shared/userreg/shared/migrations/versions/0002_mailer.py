"""mailer: delivery records (never send twice) and dead letters (never lose one silently)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:59:42.753482
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_deliveries",
        sa.Column("event_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("template", sa.String(length=100), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.Enum("SENDING", "SENT", "FAILED", name="mail_delivery_status"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", "template", name=op.f("pk_mail_deliveries")),
    )
    op.create_table(
        "dead_letters",
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=True),
        sa.Column("app_id", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("times_dead_lettered", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_dead_letters")),
    )
    op.create_index("ix_dead_letters_dead_lettered_at", "dead_letters", ["dead_lettered_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dead_letters_dead_lettered_at", table_name="dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("mail_deliveries")
    sa.Enum(name="mail_delivery_status").drop(op.get_bind())
