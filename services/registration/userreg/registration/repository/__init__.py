"""The registration service's reads and writes, and where each runs: `statements.py` builds the
statements once, `sessions.py` has those about sessions after they were opened, `profiles.py` the
signed-in user's updates.

One pool, two kinds of connection: AUTOCOMMIT ones for what is one statement (reads, and a plain
registration: no BEGIN/COMMIT round trips), and transactions for what takes several (a guest's
conversion, a registration that adds dynamic columns or checks a shared mailbox, login, status
changes, confirmation links). The service opens them through `connection()` and `session()` and
hands them back to the functions here; it builds no statement itself.

A registered user, its confirmation token and mailbox record (when the app confirms emails) and
its `user.registered` outbox row are written by ONE statement (`save_registered_user`), whether
the user is new or a converted guest: atomic on its own, and a duplicate identity fails all of it
on the unique index (3033), so nothing of a losing registration remains.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from userreg.registration import errors
from userreg.registration.repository.statements import (
    COLUMNS_LOCK,
    IDENTITY_INDEX,
    MAILBOX_ROW,
    OUTBOX_BACKLOG_ESTIMATE,
    OUTBOX_ROW,
    REGISTRATIONS,
    TENANT_QUERY,
    TOKEN_ROW,
    USER_ROW,
    USERS,
    user_by_id,
    user_of,
)
from userreg.registration.rules.schema import Column
from userreg.shared.confirmations import mailbox_email, mailbox_of, new_confirmation, user_event
from userreg.shared.db.engine import autocommit
from userreg.shared.db.models import (
    App,
    ColumnType,
    SchemaColumn,
    SessionToken,
    User,
    UserStatus,
)
from userreg.shared.events import USER_REGISTERED
from userreg.shared.outbox import outbox_row


class Repository:
    """The registration service's reads and writes, on one engine's pool."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._autocommit = autocommit(engine)
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._reads = async_sessionmaker(self._autocommit, expire_on_commit=False)

    # --- where the service's steps run ------------------------------------------------------

    def connection(self, *, transaction: bool) -> contextlib.AbstractAsyncContextManager[AsyncConnection]:
        """A connection whose work commits when the block ends without an exception: in a
        transaction when the work is more than one statement, else AUTOCOMMIT (no BEGIN/COMMIT)."""
        return (self._engine if transaction else self._autocommit).begin()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session in a transaction (for the shared confirmation functions, which add rows
        to it), committed when the block ends without an exception."""
        async with self._sessions() as session, session.begin():
            yield session

    # --- apps --------------------------------------------------------------------------------

    async def find_app(self, app_id: str) -> tuple[App, list[Column]] | None:
        """The app (detached) with this upper-case appId and its schema's columns, or None."""
        async with self._autocommit.begin() as connection:
            rows = (await connection.execute(TENANT_QUERY, {"app_id": app_id})).all()
        if not rows:
            return None
        app = App(**{column.key: rows[0]._mapping[column] for column in App.__table__.columns})
        columns = [
            Column(
                row.column_name,
                ColumnType(row.column_type),
                row.column_required,
                row.column_max_length,
                row.column_is_identity,
                row.column_built_in,
            )
            for row in rows
            if row.column_name is not None
        ]
        return app, columns

    # --- registration ------------------------------------------------------------------------

    async def lock_schema(self, connection: AsyncConnection, app_id: str) -> dict[str, bool]:
        """Take the app's dynamic-columns lock (until the transaction ends) and read its schema as
        it is now: lower-cased column name → built in."""
        await connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(COLUMNS_LOCK.format(app_id)))))
        return dict(
            (
                await connection.execute(
                    select(SchemaColumn.name_key, SchemaColumn.built_in).where(SchemaColumn.app_id == app_id)
                )
            )
            .tuples()
            .all()
        )

    async def add_columns(self, connection: AsyncConnection, app_id: str, columns: Iterable[Column]) -> list[Column]:
        """Add dynamic columns (sorted by name: concurrent inserts lock in one order); a column
        another request created meanwhile is kept as it is. The columns as they finally are."""
        new_rows = postgresql.insert(SchemaColumn).values(
            [
                {
                    "app_id": app_id,
                    "name_key": column.name.lower(),
                    "name": column.name,
                    "type": column.type,
                    "required": False,
                    "max_length": column.max_length,
                    "is_identity": False,
                    "built_in": False,
                }
                for column in columns
            ]
        )
        # DO UPDATE (a no-op) rather than DO NOTHING so that RETURNING also gives the existing rows.
        statement = new_rows.on_conflict_do_update(
            index_elements=[SchemaColumn.app_id, SchemaColumn.name_key],
            set_={"name_key": new_rows.excluded.name_key},
        ).returning(SchemaColumn.name, SchemaColumn.type, SchemaColumn.max_length)
        return [
            Column(name, ColumnType(column_type), max_length=max_length)
            for name, column_type, max_length in (await connection.execute(statement)).all()
        ]

    async def find_user_by_id(self, app_id: str, object_id: str) -> User | None:
        """The user with this objectId in the app, read outside any transaction."""
        async with self._autocommit.begin() as connection:
            return user_of((await connection.execute(user_by_id(app_id, object_id))).first())

    async def lock_user_by_id(self, connection: AsyncConnection, app_id: str, object_id: str) -> User | None:
        """The user, its row locked until the transaction ends (a guest is converted once, a
        status changes once)."""
        query = user_by_id(app_id, object_id).with_for_update()
        return user_of((await connection.execute(query)).first())

    async def save_registered_user(
        self, connection: AsyncConnection, app: App, user: User, *, converted_guest: bool, public_confirmation_url: str
    ) -> None:
        """Write the registered user (a new row, or the converted guest's existing row), its
        confirmation token and its mailbox's record when the app confirms emails, and its
        `user.registered` outbox row, in one statement. 3033 when the identity is taken."""
        now = user.updated_at
        assert now is not None, "the service stamps a registration before it is saved"
        parameters = USER_ROW.parameters(user)
        confirmation = None
        if app.email_confirmation_required:
            mailbox = mailbox_of(user)
            assert mailbox is not None, "an app that confirms emails requires the address (3040)"
            token, confirmation = new_confirmation(app, user, public_confirmation_url, now)
            parameters |= TOKEN_ROW.parameters(token)
            parameters |= MAILBOX_ROW.parameters(mailbox_email(app, mailbox, now))
        parameters |= OUTBOX_ROW.parameters(outbox_row(user_event(USER_REGISTERED, app, user, confirmation)))
        statement = REGISTRATIONS[converted_guest, app.email_confirmation_required]
        try:
            await connection.execute(statement, parameters)
        except IntegrityError as error:
            if violated_constraint(error) == IDENTITY_INDEX:
                raise errors.IdentityTaken() from None
            raise

    async def create_guest(self, user: User, token_hash: bytes) -> None:
        """A new GUEST user and its session token."""
        async with self.session() as session:
            session.add(user)
            await session.flush()
            session.add(
                SessionToken(
                    token_hash=token_hash,
                    app_id=user.app_id,
                    user_id=user.object_id,
                    created_at=user.created_at,
                    last_used_at=user.created_at,
                )
            )

    # --- users by identity, login, status --------------------------------------------------

    async def find_user(self, app_id: str, identity_key: str, session: AsyncSession | None = None) -> User | None:
        """The user with this identity key: in the session's transaction when given, else read
        outside any transaction."""
        query = select(User).where(User.app_id == app_id, User.identity_key == identity_key)
        if session is not None:
            return await session.scalar(query)
        async with self._reads() as reads:
            return await reads.scalar(query)

    async def record_login(
        self, user: User, token_hash: bytes, *, at: datetime, password_hash: str | None = None
    ) -> None:
        """The user's last login (and its password rehashed, when given) and its new session token."""
        changes: dict[str, Any] = {"last_login": at}
        if password_hash is not None:
            changes["password_hash"] = password_hash
        async with self.session() as session:
            await session.execute(update(User).where(User.object_id == user.object_id).values(**changes))
            session.add(
                SessionToken(
                    token_hash=token_hash, app_id=user.app_id, user_id=user.object_id, created_at=at, last_used_at=at
                )
            )

    async def change_status(
        self, connection: AsyncConnection, user_id: str, status: UserStatus, *, at: datetime, end_sessions: bool
    ) -> None:
        """The user's new status; `end_sessions` deletes its session tokens."""
        await connection.execute(update(USERS).where(USERS.c.object_id == user_id).values(status=status, updated_at=at))
        if end_sessions:
            await connection.execute(delete(SessionToken).where(SessionToken.user_id == user_id))

    async def delete_user(self, app_id: str, object_id: str) -> bool:
        """Delete the app's user with this objectId, with its sessions and links (the foreign keys
        cascade); False when there was none."""
        async with self._autocommit.begin() as connection:
            deleted = await connection.execute(
                delete(USERS).where(USERS.c.object_id == object_id, USERS.c.app_id == app_id)
            )
        return deleted.rowcount > 0


async def outbox_backlog(engine: AsyncEngine) -> int:
    """Outbox rows not yet published, estimated from the span of their ids (an upper bound)."""
    async with engine.connect() as connection:
        return (await connection.execute(OUTBOX_BACKLOG_ESTIMATE)).scalar_one()


def violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke (asyncpg keeps it on the cause)."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return name
    return None
