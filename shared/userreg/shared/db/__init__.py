"""Database access: models, the engine factory and the migration runner."""

from userreg.shared.db import mail  # noqa: F401  (the mailer's tables belong to the same metadata)
from userreg.shared.db.engine import (
    create_engine,
    create_sessionmaker,
    drop_database,
    ensure_database,
    migrate,
)
from userreg.shared.db.models import (
    App,
    Base,
    ColumnType,
    ConfirmationToken,
    MailboxEmail,
    OutboxEvent,
    RateLimitWindow,
    SchemaColumn,
    SessionToken,
    Template,
    User,
    UserStatus,
)

__all__ = [
    "App", "Base", "ColumnType", "ConfirmationToken", "MailboxEmail", "OutboxEvent", "RateLimitWindow", "SchemaColumn", "SessionToken",
    "Template", "User", "UserStatus", "create_engine", "create_sessionmaker", "drop_database", "ensure_database", "migrate",
]
