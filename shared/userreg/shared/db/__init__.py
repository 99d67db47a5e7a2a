"""Database access: models, the engine factory and the migration runner.

`mail` (the mailer's tables) is imported here for its side effect: its tables join `Base.metadata`
whenever any part of the package is imported, so the metadata the migrations compare against
(migrations/env.py imports `db.models`) is the whole schema. `__all__` lists it: the import is meant.
"""

from userreg.shared.db import mail
from userreg.shared.db.engine import (
    autocommit,
    create_engine,
    create_sessionmaker,
    drop_database,
    ensure_database,
    migrate,
    session_dsn,
)
from userreg.shared.db.models import (
    App,
    AuditEntry,
    Base,
    ColumnType,
    ConfirmationToken,
    EmailChangeToken,
    MailboxEmail,
    Operator,
    OperatorSession,
    OutboxEvent,
    PasswordResetToken,
    RateLimitWindow,
    SchemaColumn,
    SessionToken,
    Template,
    User,
    UserStatus,
)

__all__ = [
    "App",
    "AuditEntry",
    "Base",
    "ColumnType",
    "ConfirmationToken",
    "EmailChangeToken",
    "MailboxEmail",
    "Operator",
    "OperatorSession",
    "OutboxEvent",
    "PasswordResetToken",
    "RateLimitWindow",
    "SchemaColumn",
    "SessionToken",
    "Template",
    "User",
    "UserStatus",
    "autocommit",
    "create_engine",
    "create_sessionmaker",
    "drop_database",
    "ensure_database",
    "mail",
    "migrate",
    "session_dsn",
]
