"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:54:17.192073
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("rest_api_key", sa.String(length=64), nullable=False),
        sa.Column("server_api_key", sa.String(length=64), nullable=False),
        sa.Column("registration_enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("email_confirmation_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("dynamic_schema", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("identity_property", sa.String(length=100), server_default="email", nullable=False),
        sa.Column("confirmation_link_ttl", sa.Integer(), server_default=sa.text("86400"), nullable=False),
        sa.Column("welcome_email_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("confirm_on_get", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("before_register_webhook_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("app_id", name=op.f("pk_apps")),
        sa.UniqueConstraint("rest_api_key", name=op.f("uq_apps_rest_api_key")),
        sa.UniqueConstraint("server_api_key", name=op.f("uq_apps_server_api_key")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.UUID(as_uuid=False), nullable=False),
        sa.Column("routing_key", sa.String(length=100), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("event_id", name=op.f("uq_outbox_event_id")),
    )
    op.create_table(
        "schema_columns",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "type",
            sa.Enum("STRING", "TEXT", "INT", "DOUBLE", "BOOLEAN", "DATETIME", name="column_type"),
            nullable=False,
        ),
        sa.Column("required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("max_length", sa.Integer(), nullable=True),
        sa.Column("is_identity", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("built_in", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.app_id"], name=op.f("fk_schema_columns_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app_id", "name_key", name=op.f("pk_schema_columns")),
    )
    op.create_index(
        "uq_schema_columns_one_identity",
        "schema_columns",
        ["app_id"],
        unique=True,
        postgresql_where=sa.text("is_identity"),
    )
    op.create_table(
        "templates",
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("locale", sa.String(length=20), server_default="", nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("text_body", sa.Text(), nullable=True),
        sa.Column("html_body", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["app_id"], ["apps.app_id"], name=op.f("fk_templates_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("app_id", "name", "locale", name=op.f("pk_templates")),
    )
    op.create_table(
        "users",
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("identity_key", sa.Text(), nullable=True),
        sa.Column(
            "properties", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("ENABLED", "DISABLED", "EMAIL_CONFIRMATION_PENDING", "GUEST", name="user_status"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["app_id"], ["apps.app_id"], name=op.f("fk_users_app_id_apps"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("object_id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_app_id"), "users", ["app_id"], unique=False)
    op.create_index(
        "uq_users_app_identity",
        "users",
        ["app_id", "identity_key"],
        unique=True,
        postgresql_where=sa.text("identity_key IS NOT NULL"),
    )
    op.create_table(
        "confirmation_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.app_id"], name=op.f("fk_confirmation_tokens_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.object_id"], name=op.f("fk_confirmation_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_confirmation_tokens")),
    )
    op.create_index(
        "ix_confirmation_tokens_user_created", "confirmation_tokens", ["user_id", "created_at"], unique=False
    )
    op.create_table(
        "session_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("app_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.app_id"], name=op.f("fk_session_tokens_app_id_apps"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.object_id"], name=op.f("fk_session_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_session_tokens")),
    )
    op.create_index(op.f("ix_session_tokens_user_id"), "session_tokens", ["user_id"], unique=False)
    # Wake the outbox relays the moment an event commits (NOTIFY is delivered on commit only).
    op.execute("""
        CREATE FUNCTION userreg_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('userreg_outbox', ''); RETURN NULL; END $$
    """)
    op.execute("""
        CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
        FOR EACH STATEMENT EXECUTE FUNCTION userreg_outbox_notify()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION userreg_outbox_notify()")
    op.drop_index(op.f("ix_session_tokens_user_id"), table_name="session_tokens")
    op.drop_table("session_tokens")
    op.drop_index("ix_confirmation_tokens_user_created", table_name="confirmation_tokens")
    op.drop_table("confirmation_tokens")
    op.drop_index("uq_users_app_identity", table_name="users", postgresql_where=sa.text("identity_key IS NOT NULL"))
    op.drop_index(op.f("ix_users_app_id"), table_name="users")
    op.drop_table("users")
    op.drop_table("templates")
    op.drop_index(
        "uq_schema_columns_one_identity", table_name="schema_columns", postgresql_where=sa.text("is_identity")
    )
    op.drop_table("schema_columns")
    op.drop_table("outbox")
    op.drop_table("apps")
    sa.Enum(name="user_status").drop(op.get_bind())
    sa.Enum(name="column_type").drop(op.get_bind())
