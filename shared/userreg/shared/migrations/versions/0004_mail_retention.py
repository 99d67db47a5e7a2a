"""indexes for the mailer's retention: sent deliveries and replayed dead letters by age

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 21:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # mail_deliveries and dead_letters may be large by the time this runs: the indexes are built
    # CONCURRENTLY, so the mailers keep writing meanwhile. That cannot run in a transaction: the
    # autocommit block commits what ran before it (env.py's lock is session-level, so it holds).
    with op.get_context().autocommit_block():
        _create_index_concurrently(
            "ix_mail_deliveries_sent_at", "mail_deliveries", ["sent_at"], where="status = 'SENT'"
        )
        _create_index_concurrently(
            "ix_dead_letters_replayed_at", "dead_letters", ["replayed_at"], where="replayed_at IS NOT NULL"
        )


def downgrade() -> None:
    # CONCURRENTLY too: a plain DROP INDEX waits for an exclusive lock on the table, and every
    # mailer statement would queue behind it.
    with op.get_context().autocommit_block():
        op.drop_index(
            "ix_dead_letters_replayed_at", table_name="dead_letters", postgresql_concurrently=True, if_exists=True
        )
        op.drop_index(
            "ix_mail_deliveries_sent_at", table_name="mail_deliveries", postgresql_concurrently=True, if_exists=True
        )


def _create_index_concurrently(name: str, table: str, columns: list[str], where: str | None = None) -> None:
    """CREATE INDEX CONCURRENTLY IF NOT EXISTS, so a run interrupted after the build resumes. A
    build interrupted halfway leaves an invalid index behind (IF NOT EXISTS would keep it): that
    one is dropped and built again. (Each migration keeps its own copy: a later change of a shared
    helper would change what an old migration does.)"""
    valid = (
        op.get_bind()
        .execute(sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name})
        .scalar()
    )
    if valid is False:
        op.drop_index(name, table_name=table, postgresql_concurrently=True)
    op.create_index(
        name,
        table,
        columns,
        unique=False,
        postgresql_concurrently=True,
        if_not_exists=True,
        postgresql_where=None if where is None else sa.text(where),
    )
