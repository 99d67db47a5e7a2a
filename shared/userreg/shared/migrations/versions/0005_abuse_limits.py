"""abuse limits: per-app limit settings, rate-limit windows, mailbox emails, normalized email identities

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 14:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

from userreg.shared.mailboxes import mailbox_key

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users may be large: its index is built CONCURRENTLY, so registrations go on meanwhile. That
    # cannot run in a transaction: the autocommit block commits what ran before it (env.py's lock is
    # session-level, so it holds). It comes first, so that the rest of this migration still commits
    # at once, with its version. (Guests are found by age for their removal after the app's guestTtl.)
    with op.get_context().autocommit_block():
        _create_index_concurrently(
            "ix_users_guests_created", "users", ["app_id", "created_at"], where="status = 'GUEST'"
        )
    op.add_column("apps", sa.Column("client_rate_limit", sa.String(length=40), server_default="60/60s", nullable=False))
    op.add_column("apps", sa.Column("max_dynamic_columns", sa.Integer(), server_default=sa.text("100"), nullable=False))
    op.add_column(
        "apps", sa.Column("mailbox_daily_email_limit", sa.Integer(), server_default=sa.text("10"), nullable=False)
    )
    op.add_column("apps", sa.Column("guest_ttl", sa.Integer(), server_default=sa.text("2592000"), nullable=False))
    op.create_table(
        "mailbox_emails",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("mailbox", sa.Text(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.app_id"], name=op.f("fk_mailbox_emails_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mailbox_emails")),
    )
    # mailbox_emails and rate_limit_windows are new and empty: their indexes are built with them,
    # in the migration's transaction.
    op.create_index("ix_mailbox_emails_mailbox_sent", "mailbox_emails", ["app_id", "mailbox", "sent_at"])
    op.create_index("ix_mailbox_emails_sent_at", "mailbox_emails", ["sent_at"])
    op.create_table(
        "rate_limit_windows",
        sa.Column("bucket", sa.String(length=100), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "client", "window_start", name=op.f("pk_rate_limit_windows")),
        prefixes=["UNLOGGED"],
    )
    op.create_index("ix_rate_limit_windows_window_start", "rate_limit_windows", ["window_start"])
    _normalize_email_identities()


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


def _normalize_email_identities() -> None:
    """Email identities are now compared as mailboxes (IDNA domain, case-folded). ASCII keys were
    lower-cased already, which is the same; only keys with other characters can change. A key whose
    new form another user of the app holds already stays as it was (both users keep working)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT u.object_id, u.app_id, u.identity_key FROM users u JOIN apps a ON a.app_id = u.app_id "
            "WHERE lower(a.identity_property) = 'email' AND u.identity_key ~ '[^\\x01-\\x7f]'"
        )
    ).all()
    for object_id, app_id, key in rows:
        new_key = mailbox_key(key)
        if new_key == key:
            continue
        bind.execute(
            sa.text(
                "UPDATE users SET identity_key = :new_key WHERE object_id = :object_id AND NOT EXISTS ("
                "SELECT 1 FROM users other WHERE other.app_id = :app_id AND other.identity_key = :new_key)"
            ),
            {"new_key": new_key, "object_id": object_id, "app_id": app_id},
        )


def downgrade() -> None:
    # CONCURRENTLY, like its build: a plain DROP INDEX waits for an exclusive lock on users.
    with op.get_context().autocommit_block():
        op.drop_index("ix_users_guests_created", table_name="users", postgresql_concurrently=True, if_exists=True)
    op.drop_index("ix_rate_limit_windows_window_start", table_name="rate_limit_windows")
    op.drop_table("rate_limit_windows")
    op.drop_index("ix_mailbox_emails_sent_at", table_name="mailbox_emails")
    op.drop_index("ix_mailbox_emails_mailbox_sent", table_name="mailbox_emails")
    op.drop_table("mailbox_emails")
    op.drop_column("apps", "guest_ttl")
    op.drop_column("apps", "mailbox_daily_email_limit")
    op.drop_column("apps", "max_dynamic_columns")
    op.drop_column("apps", "client_rate_limit")
