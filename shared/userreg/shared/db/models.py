"""The database tables of userreg. The schema itself is created by the Alembic migrations."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UserStatus(str, enum.Enum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"
    EMAIL_CONFIRMATION_PENDING = "EMAIL_CONFIRMATION_PENDING"
    GUEST = "GUEST"


class ColumnType(str, enum.Enum):
    STRING = "STRING"
    TEXT = "TEXT"
    INT = "INT"
    DOUBLE = "DOUBLE"
    BOOLEAN = "BOOLEAN"
    DATETIME = "DATETIME"


class App(Base):
    """A tenant: its keys and its registration settings (docs/api.md, Apps)."""

    __tablename__ = "apps"

    app_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rest_api_key: Mapped[str] = mapped_column(String(64), unique=True)
    server_api_key: Mapped[str] = mapped_column(String(64), unique=True)
    registration_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    email_confirmation_required: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    dynamic_schema: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    identity_property: Mapped[str] = mapped_column(String(100), server_default="email")
    confirmation_link_ttl: Mapped[int] = mapped_column(Integer, server_default=text("86400"))
    welcome_email_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # Off by default: a mail scanner's plain GET of a link must not confirm the account.
    confirm_on_get: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    before_register_webhook_url: Mapped[str | None] = mapped_column(Text)
    # Abuse limits (the README's Security section): requests per client address ("60/60s", or "off"), dynamic columns,
    # confirmation/reset emails per mailbox and day, and how long an unconverted guest is kept.
    client_rate_limit: Mapped[str] = mapped_column(String(40), server_default="60/60s")
    max_dynamic_columns: Mapped[int] = mapped_column(Integer, server_default=text("100"))
    mailbox_daily_email_limit: Mapped[int] = mapped_column(Integer, server_default=text("10"))
    guest_ttl: Mapped[int] = mapped_column(Integer, server_default=text("2592000"))
    # Browser clients (docs/api.md, Browser clients): "*" or the origins allowed, separated by spaces.
    allowed_origins: Mapped[str] = mapped_column(Text, server_default="*")
    # Sessions end after this many seconds without use; a reset link lives this long (docs/api.md, Sessions
    # and password recovery).
    session_ttl: Mapped[int] = mapped_column(Integer, server_default=text("2592000"))
    password_reset_link_ttl: Mapped[int] = mapped_column(Integer, server_default=text("3600"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SchemaColumn(Base):
    """One column of an app's Users schema; user values live in `User.properties`."""

    __tablename__ = "schema_columns"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True)
    name_key: Mapped[str] = mapped_column(String(200), primary_key=True)  # lower(name)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[ColumnType] = mapped_column(Enum(ColumnType, name="column_type"))
    required: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    max_length: Mapped[int | None] = mapped_column(Integer)
    is_identity: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    built_in: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    __table_args__ = (
        Index("uq_schema_columns_one_identity", "app_id", unique=True, postgresql_where=text("is_identity")),
    )


class User(Base):
    __tablename__ = "users"

    object_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"), index=True)
    # lower() of the identity value; NULL for guests. Unique per app: the database settles races.
    identity_key: Mapped[str | None] = mapped_column(Text)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    password_hash: Mapped[str | None] = mapped_column(Text)
    status: Mapped[UserStatus] = mapped_column(Enum(UserStatus, name="user_status"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_login: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index(
            "uq_users_app_identity",
            "app_id",
            "identity_key",
            unique=True,
            postgresql_where=text("identity_key IS NOT NULL"),
        ),
        Index("ix_users_guests_created", "app_id", "created_at", postgresql_where=text("status = 'GUEST'")),
    )


class ConfirmationToken(Base):
    """A confirmation link's token, stored only as its SHA-256 digest."""

    __tablename__ = "confirmation_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.object_id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_confirmation_tokens_user_created", "user_id", "created_at"),)


class SessionToken(Base):
    """A login's `user-token`, stored only as its SHA-256 digest. It ends `sessionTtl` seconds
    after `last_used_at`."""

    __tablename__ = "session_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.object_id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (Index("ix_session_tokens_last_used_at", "last_used_at"),)


class PasswordResetToken(Base):
    """A password-reset link's token, stored only as its SHA-256 digest; single use."""

    __tablename__ = "password_reset_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.object_id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_password_reset_tokens_user_created", "user_id", "created_at"),
        Index("ix_password_reset_tokens_expires_at", "expires_at"),
    )


class EmailChangeToken(Base):
    """A link that confirms a new email address (the app confirms emails), stored only as its
    SHA-256 digest; single use. Until it is opened the user keeps its old address. A user has at
    most one: asking again replaces it."""

    __tablename__ = "email_change_tokens"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.object_id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(Text)
    # The user's identity key once the address is its, when the address is the identity; else NULL.
    identity_key: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_email_change_tokens_user_id", "user_id"),)


class MailboxEmail(Base):
    """A confirmation or reset email issued to a mailbox (`mailbox_key` form): what the mailbox
    cool-down and daily cap count. Rows older than a day are pruned."""

    __tablename__ = "mailbox_emails"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"))
    mailbox: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        Index("ix_mailbox_emails_mailbox_sent", "app_id", "mailbox", "sent_at"),
        Index("ix_mailbox_emails_sent_at", "sent_at"),
    )


class RateLimitWindow(Base):
    """Requests one client made in one fixed window of one limit (`bucket`, e.g. an app's API).
    Shared by every replica; UNLOGGED (a crash forgets counts, which only lifts limits early)."""

    __tablename__ = "rate_limit_windows"

    bucket: Mapped[str] = mapped_column(String(100), primary_key=True)
    client: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_rate_limit_windows_window_start", "window_start"), {"prefixes": ["UNLOGGED"]})


class OutboxEvent(Base):
    """An event written in the same transaction as the change it reports; deleted once published."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(UUID(as_uuid=False), unique=True)
    routing_key: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Template(Base):
    """An app's override of a default email or page template, for one locale ('' = any). `kind`
    ('email' or 'page', `userreg.shared.templates.kind_of`) is part of the key: an email and a page
    may share a name (`password-reset`), and each has its own overrides. It has no default, so
    that no override is stored as the wrong kind by leaving it out."""

    __tablename__ = "templates"

    app_id: Mapped[str] = mapped_column(ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    locale: Mapped[str] = mapped_column(String(20), primary_key=True, server_default="")
    subject: Mapped[str | None] = mapped_column(Text)
    text_body: Mapped[str | None] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Operator(Base):
    """Someone who operates userreg through the console (services/console/README.md); `email` in `mailbox_key` form."""

    __tablename__ = "operators"

    operator_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OperatorSession(Base):
    """A console sign-in, stored only as its cookie token's SHA-256 digest."""

    __tablename__ = "operator_sessions"

    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    operator_id: Mapped[str] = mapped_column(ForeignKey("operators.operator_id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AuditEntry(Base):
    """One change made in the console or with `userreg` (services/console/README.md): who, what, when, which app. No
    password, hash, token or key is ever in `details`. Entries outlive the apps they name."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor: Mapped[str] = mapped_column(String(400))
    action: Mapped[str] = mapped_column(String(100))
    app_id: Mapped[str | None] = mapped_column(String(36))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))

    __table_args__ = (Index("ix_audit_log_app_id", "app_id", "id"),)
