"""The statements of the registration service's repository, built once at import: the app with its
schema, the one-statement registrations (user, confirmation token, mailbox record and outbox row
as CTEs of one INSERT), a guest, a user by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, func, insert, literal_column, select, update

from userreg.shared.db.models import (
    App,
    Base,
    ConfirmationToken,
    MailboxEmail,
    OutboxEvent,
    SchemaColumn,
    User,
)

IDENTITY_INDEX = "uq_users_app_identity"
# Registrations that add dynamic columns serialise per app on this lock, so the cap holds.
COLUMNS_LOCK = "columns {}"
# An app and its schema in one round trip: one row per column (the app's columns repeated).
TENANT_QUERY = (
    select(
        App.__table__,
        SchemaColumn.name.label("column_name"),
        SchemaColumn.type.label("column_type"),
        SchemaColumn.required.label("column_required"),
        SchemaColumn.max_length.label("column_max_length"),
        SchemaColumn.is_identity.label("column_is_identity"),
        SchemaColumn.built_in.label("column_built_in"),
    )
    .outerjoin(SchemaColumn, SchemaColumn.app_id == App.app_id)
    .where(App.app_id == bindparam("app_id"))
)


def table_of(model: type[Base]) -> Table:
    """The model's table (declarative typing says FromClause; a model with a __tablename__ maps to a Table)."""
    assert isinstance(model.__table__, Table)
    return model.__table__


USERS = table_of(User)
# Not count(*): a count reads every row, and the backlog is largest exactly when the database is
# already struggling (the broker away, a burst). PostgreSQL answers min and max of the primary key
# from its index, one lookup each; the relay publishes the oldest rows first, so the span of the
# ids stays close to the count.
OUTBOX_BACKLOG_ESTIMATE = select(func.coalesce(func.max(OutboxEvent.id) - func.min(OutboxEvent.id) + 1, 0))


class RowInsert:
    """An INSERT of one row of a model's table as a CTE whose values are bind parameters."""

    def __init__(self, model: type[Base], name: str, columns: tuple[str, ...]) -> None:
        self.name = name
        self.columns = columns
        self.table = table_of(model)
        self.cte = insert(self.table).values({column: self.parameter(column) for column in columns}).cte(name)

    def parameter(self, column: str) -> Any:
        return bindparam(f"{self.name}_{column}", type_=self.table.c[column].type)

    def parameters(self, row: Any) -> dict[str, Any]:
        return {f"{self.name}_{column}": getattr(row, column) for column in self.columns}


USER_ROW = RowInsert(
    User,
    "u",
    ("object_id", "app_id", "identity_key", "properties", "password_hash", "status", "created_at", "updated_at"),
)
TOKEN_ROW = RowInsert(ConfirmationToken, "t", ("token_hash", "app_id", "user_id", "created_at", "expires_at"))
OUTBOX_ROW = RowInsert(OutboxEvent, "o", ("event_id", "routing_key", "payload"))
MAILBOX_ROW = RowInsert(MailboxEmail, "m", ("app_id", "mailbox", "sent_at"))
# A converted guest: its row (same objectId, same created) takes a registered user's values, from
# the same parameters as a new user's row.
GUEST_ROW = (
    update(USERS)
    .where(
        USERS.c.object_id == USER_ROW.parameter("object_id"),
        USERS.c.app_id == USER_ROW.parameter("app_id"),
    )
    .values(
        {
            column: USER_ROW.parameter(column)
            for column in ("identity_key", "properties", "password_hash", "status", "updated_at")
        }
    )
    .cte("u")
)


def one_statement(*ctes: Any) -> Any:
    return select(literal_column("1")).add_cte(*ctes)


CREATE_USER = one_statement(USER_ROW.cte, OUTBOX_ROW.cte)
CREATE_PENDING_USER = one_statement(USER_ROW.cte, TOKEN_ROW.cte, MAILBOX_ROW.cte, OUTBOX_ROW.cte)
# (converting a guest, the app confirms emails) → the statement that writes the registration.
REGISTRATIONS = {
    (False, False): CREATE_USER,
    (False, True): CREATE_PENDING_USER,
    (True, False): one_statement(GUEST_ROW, OUTBOX_ROW.cte),
    (True, True): one_statement(GUEST_ROW, TOKEN_ROW.cte, MAILBOX_ROW.cte, OUTBOX_ROW.cte),
}


def user_of(row: Any) -> User | None:
    """A (detached) `User` from a row of the users table read through Core."""
    return None if row is None else User(**row._mapping)


def user_by_id(app_id: str, object_id: str) -> Any:
    return select(USERS).where(USERS.c.object_id == object_id, USERS.c.app_id == app_id)
