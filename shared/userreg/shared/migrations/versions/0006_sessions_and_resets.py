"""sessions and password resets: per-app CORS origins, session lifetime and reset-link lifetime,
session activity, password-reset tokens; template overrides keyed by kind (email or page)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 17:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A session lives while it is used: `sessionTtl` counts from its last use. session_tokens may be
    # large: the index for pruning sessions unused past their app's sessionTtl is built CONCURRENTLY,
    # which cannot run in a transaction. This comes first and is written to be run again (IF NOT
    # EXISTS), so that an interrupted run resumes and the rest still commits at once with its version.
    with op.get_context().autocommit_block():
        op.execute(
            "ALTER TABLE session_tokens ADD COLUMN IF NOT EXISTS last_used_at timestamptz NOT NULL DEFAULT now()"
        )
        _create_index_concurrently("ix_session_tokens_last_used_at", "session_tokens", ["last_used_at"])
    # Constant defaults: PostgreSQL adds these columns without rewriting the tables.
    op.add_column("apps", sa.Column("allowed_origins", sa.Text(), server_default="*", nullable=False))
    op.add_column("apps", sa.Column("session_ttl", sa.Integer(), server_default=sa.text("2592000"), nullable=False))
    op.add_column(
        "apps", sa.Column("password_reset_link_ttl", sa.Integer(), server_default=sa.text("3600"), nullable=False)
    )
    op.create_table(
        "password_reset_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.app_id"], name=op.f("fk_password_reset_tokens_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.object_id"], name=op.f("fk_password_reset_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_password_reset_tokens")),
    )
    op.create_index("ix_password_reset_tokens_user_created", "password_reset_tokens", ["user_id", "created_at"])
    op.create_index("ix_password_reset_tokens_expires_at", "password_reset_tokens", ["expires_at"])
    # `password-reset` names an email and, from this revision on, a page: an override says which it
    # is, and the kind is part of the key. The overrides stored so far are emails, but for those of
    # the five confirmation pages. The default only fills the existing rows: the models give none,
    # so that an override never becomes an email by leaving its kind out.
    op.add_column("templates", sa.Column("kind", sa.String(length=5), server_default="email", nullable=False))
    op.execute(
        "UPDATE templates SET kind = 'page' WHERE name IN ('confirmation-pending', "
        "'confirmation-confirmed', 'confirmation-expired', 'confirmation-disabled', "
        "'confirmation-failed')"
    )
    op.alter_column("templates", "kind", server_default=None)
    op.drop_constraint("pk_templates", "templates", type_="primary")
    op.create_primary_key(op.f("pk_templates"), "templates", ["app_id", "kind", "name", "locale"])


def _create_index_concurrently(name: str, table: str, columns: list[str]) -> None:
    """CREATE INDEX CONCURRENTLY IF NOT EXISTS, so a run interrupted after the build resumes; an
    invalid index left by a build interrupted halfway is dropped and built again. (Each migration
    keeps its own copy: a later change of a shared helper would change what an old migration does.)"""
    valid = (
        op.get_bind()
        .execute(sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"), {"name": name})
        .scalar()
    )
    if valid is False:
        op.drop_index(name, table_name=table, postgresql_concurrently=True)
    op.create_index(name, table, columns, unique=False, postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    # Without the kind, an override of the `password-reset` page would be read as the email's (and
    # may share its key with one): it goes, as the reset pages do.
    op.execute("DELETE FROM templates WHERE kind = 'page' AND name = 'password-reset'")
    op.drop_constraint("pk_templates", "templates", type_="primary")
    op.create_primary_key(op.f("pk_templates"), "templates", ["app_id", "name", "locale"])
    op.drop_column("templates", "kind")
    op.drop_index("ix_password_reset_tokens_expires_at", table_name="password_reset_tokens")
    op.drop_index("ix_password_reset_tokens_user_created", table_name="password_reset_tokens")
    op.drop_table("password_reset_tokens")
    op.drop_index("ix_session_tokens_last_used_at", table_name="session_tokens")
    op.drop_column("session_tokens", "last_used_at")
    op.drop_column("apps", "password_reset_link_ttl")
    op.drop_column("apps", "session_ttl")
    op.drop_column("apps", "allowed_origins")
