"""indexes for the mailer's retention: sent deliveries and replayed dead letters by age

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 21:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_mail_deliveries_sent_at', 'mail_deliveries', ['sent_at'], unique=False,
                    postgresql_where=sa.text("status = 'SENT'"))
    op.create_index('ix_dead_letters_replayed_at', 'dead_letters', ['replayed_at'], unique=False,
                    postgresql_where=sa.text('replayed_at IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_dead_letters_replayed_at', table_name='dead_letters')
    op.drop_index('ix_mail_deliveries_sent_at', table_name='mail_deliveries')
