"""All the database work of confirmation-web: its SQL, and the shared functions that run SQL in one
of its transactions.

Opening a link is the hot path: one indexed query (token hash → user → app), run as a prepared
statement on a small asyncpg pool of read-only connections (`open_read_pool`). Measured per open,
that costs about a quarter of the CPU of the same query through SQLAlchemy's engine, which is what
lets one process serve well over a thousand opens a second. A password-reset link is looked up
the same way, in its own table. Everything that writes (the guarded confirm UPDATE, issuing a new
link, changing a password) goes through SQLAlchemy sessions and the ORM models, in the explicit
transaction of a `Transaction` (`Repository.transaction()`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import asyncpg
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from userreg.confirmation_web.model import Link
from userreg.shared.confirmations import request_new_confirmation
from userreg.shared.db.engine import asyncpg_dsn, connect_arguments
from userreg.shared.db.models import App, ConfirmationToken, PasswordResetToken, User, UserStatus
from userreg.shared.events import Event
from userreg.shared.outbox import enqueue
from userreg.shared.passwords import change_password, request_password_reset
from userreg.shared.settings import Settings
from userreg.shared.templates import PAGE_KIND, Page, TemplateSource, TemplateStore

# The token's primary key, then the user's and the app's primary keys; plus whether the app
# overrides any page (a probe of the templates' primary key, app_id and kind), so that the common
# case, no override, renders without a query of its own. Tables and columns as in db/models.py.
_LINK_LOOKUP = """
SELECT a.app_id, a.name, a.identity_property, a.confirm_on_get, a.email_confirmation_required,
       u.object_id, u.status, u.properties, t.expires_at,
       EXISTS (SELECT 1 FROM templates p WHERE p.app_id = a.app_id AND p.kind = '{page}')
           AS has_page_overrides
FROM {tokens} t
JOIN users u ON u.object_id = t.user_id
JOIN apps a ON a.app_id = u.app_id
WHERE t.token_hash = $1 AND t.app_id = $2
"""
LOOKUP_SQL = _LINK_LOOKUP.format(tokens="confirmation_tokens", page=PAGE_KIND)
RESET_LOOKUP_SQL = _LINK_LOOKUP.format(tokens="password_reset_tokens", page=PAGE_KIND)

APP_NAME_SQL = "SELECT app_id, name FROM apps WHERE app_id = $1"


async def open_read_pool(settings: Settings) -> asyncpg.Pool:
    """The pool the lookups run on. It connects lazily (the service starts, and says it is not
    ready, while the database is away) and replaces connections the server closed. Its
    connections have the engine's bounded waits (timeouts, keepalive)."""
    return await asyncpg.create_pool(
        asyncpg_dsn(settings.database_dsn),
        min_size=0,
        max_size=settings.database_pool_size,
        init=_decode_json,
        reset=_nothing_to_reset,
        **connect_arguments(settings),
    )


async def _decode_json(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """These connections only ever run single SELECTs outside transactions: there is no session
    state to reset on release, so skip asyncpg's default reset and its round trip."""


def normalise_app_id(app_id: str) -> str:
    """AppIds are stored as uppercase GUIDs; a link typed in lower case still works."""
    return app_id.upper()


def can_name_an_app(app_id: str) -> bool:
    """Whether an appId from a path can name an app at all: at most 36 printable characters. Any
    other value is not found, without a query (PostgreSQL text holds neither NUL nor lone
    surrogates, and asyncpg refuses to send them)."""
    return len(app_id) <= 36 and app_id.isprintable()


class Repository:
    """The service's two ways into the database: the read pool for the lookups of every page, and
    sessions for the transactions that write and for reading an app's page overrides."""

    def __init__(self, sessions: async_sessionmaker, reads: asyncpg.Pool) -> None:
        self._sessions = sessions
        self._reads = reads

    async def find_link(self, app_id: str, token_hash: bytes) -> Link | None:
        """The link with this token hash in this app, or None (a token of another app is not found)."""
        if not can_name_an_app(app_id):
            return None
        row = await self._reads.fetchrow(LOOKUP_SQL, token_hash, normalise_app_id(app_id))
        return None if row is None else _link(row)

    async def find_reset_link(self, app_id: str, token_hash: bytes) -> Link | None:
        """The password-reset link with this token hash in this app, or None (used links are gone)."""
        if not can_name_an_app(app_id):
            return None
        row = await self._reads.fetchrow(RESET_LOOKUP_SQL, token_hash, normalise_app_id(app_id))
        return None if row is None else _link(row)

    async def find_app_name(self, app_id: str) -> tuple[str, str] | None:
        """(appId, name) of the app in a link's path, so that even a broken link shows whose it is."""
        if not can_name_an_app(app_id):
            return None
        row = await self._reads.fetchrow(APP_NAME_SQL, normalise_app_id(app_id))
        return None if row is None else (row["app_id"], row["name"])

    async def select_one(self) -> object:
        """`SELECT 1` on the read pool: whether the database answers the pages' own lookups (/ready)."""
        return await self._reads.fetchval("SELECT 1")

    async def page_source(self, store: TemplateStore, app_id: str, page: Page, locale: str) -> TemplateSource:
        """The app's override of a page for a locale (else the shipped default), as the shared
        template store reads it, in a session of its own."""
        async with self._sessions() as session:
            return await store.source(session, app_id, page, locale)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in one explicit transaction, for the SQL of `email_change_queries`."""
        async with self._sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """One explicit transaction: committed when the block ends, rolled back when it raises."""
        async with self._sessions() as session, session.begin():
            yield Transaction(session)


class Transaction:
    """The writes of one action, in one transaction (see `Repository.transaction`)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def confirm_user(self, app_id: str, token_hash: bytes, now: datetime) -> User | None:
        """Confirm the pending user this unexpired token belongs to; returns the user if THIS call
        changed the status, None otherwise (unknown or expired token, or not pending any more).

        One guarded UPDATE: concurrent confirmations queue on the row lock, and every one but the
        first finds the status already changed, so the status changes once and only the winner goes
        on to write the `user.confirmed` event in the same transaction.
        """
        if not can_name_an_app(app_id):
            return None
        token_is_valid = exists().where(
            ConfirmationToken.token_hash == token_hash,
            ConfirmationToken.app_id == normalise_app_id(app_id),
            ConfirmationToken.user_id == User.object_id,
            ConfirmationToken.expires_at > now,
        )
        statement = (
            update(User)
            .where(User.status == UserStatus.EMAIL_CONFIRMATION_PENDING, token_is_valid)
            .values(status=UserStatus.ENABLED, updated_at=now)
            .returning(User)
            .execution_options(synchronize_session=False)
        )
        return (await self._session.scalars(statement)).one_or_none()

    async def app_of(self, user: User) -> App:
        """The app a user belongs to (the user row references it)."""
        app = await self._session.get(App, user.app_id)
        assert app is not None
        return app

    def record(self, event: Event) -> None:
        """Put the event in the outbox: it is published once (and only if) this transaction commits."""
        enqueue(self._session, event)

    async def load_for_resend(self, app_id: str, token_hash: bytes) -> tuple[App, User, datetime] | None:
        """The app and user of a link as ORM objects, and the link's expiry, for issuing a new link
        in this transaction."""
        if not can_name_an_app(app_id):
            return None
        row = (
            await self._session.execute(
                select(App, User, ConfirmationToken.expires_at)
                .select_from(ConfirmationToken)
                .join(User, User.object_id == ConfirmationToken.user_id)
                .join(App, App.app_id == User.app_id)
                .where(ConfirmationToken.token_hash == token_hash, ConfirmationToken.app_id == normalise_app_id(app_id))
            )
        ).first()
        return None if row is None else (row[0], row[1], row[2])

    async def request_new_confirmation(
        self, app: App, user: User, public_confirmation_url: str, cooldown_seconds: int
    ) -> Event:
        """`shared.confirmations.request_new_confirmation` in this transaction: the same rule, locks
        and cool-down as the REST API; raises its `ResendRefused` errors."""
        return await request_new_confirmation(self._session, app, user, public_confirmation_url, cooldown_seconds)

    async def reset_link_rows(self, app_id: str, token_hash: bytes) -> tuple[App, User, datetime] | None:
        """The app and user of a password-reset link as ORM objects, and the link's expiry, for
        issuing a new link in this transaction (`request_password_reset` locks the user itself)."""
        if not can_name_an_app(app_id):
            return None
        return await self._reset_rows(app_id, token_hash)

    async def lock_reset_link(self, app_id: str, token_hash: bytes, user_id: str) -> tuple[App, User, datetime] | None:
        """Like `reset_link_rows`, holding the user's row and then the token's until the transaction
        ends; None when the token is gone (used by a request that held them first).

        The user's row first, always: every reset of a user (whichever of their links) and every
        new reset link queue on it, so two transactions never hold each other's rows; the token's
        row after it, so that a token deleted meanwhile is not found."""
        if not can_name_an_app(app_id):
            return None
        await self._session.execute(select(User.object_id).where(User.object_id == user_id).with_for_update())
        return await self._reset_rows(app_id, token_hash, user_id=user_id)

    async def _reset_rows(
        self, app_id: str, token_hash: bytes, user_id: str | None = None
    ) -> tuple[App, User, datetime] | None:
        statement = (
            select(App, User, PasswordResetToken.expires_at)
            .select_from(PasswordResetToken)
            .join(User, User.object_id == PasswordResetToken.user_id)
            .join(App, App.app_id == User.app_id)
            .where(PasswordResetToken.token_hash == token_hash, PasswordResetToken.app_id == normalise_app_id(app_id))
        )
        if user_id is not None:
            statement = statement.where(User.object_id == user_id).with_for_update(of=PasswordResetToken)
        row = (await self._session.execute(statement)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def request_password_reset(
        self, app: App, user: User, public_confirmation_url: str, cooldown_seconds: int
    ) -> Event:
        """`shared.passwords.request_password_reset` in this transaction: the same cool-down (per
        user, per mailbox, and the mailbox's daily cap) as `restorepassword`; raises `ResendTooSoon`."""
        return await request_password_reset(self._session, app, user, public_confirmation_url, cooldown_seconds)

    async def change_password(self, app: App, user: User, password_hash: str, now: datetime) -> Event:
        """`shared.passwords.change_password` in this transaction (the caller holds the user's row):
        the new hash, every session and every reset link of the user ended, `user.password_changed`
        in the outbox."""
        return await change_password(self._session, app, user, password_hash, now)

    async def enable_pending_user(self, user: User, now: datetime) -> None:
        """A pending user who set a password through the emailed link has proven the address: ENABLED.
        The caller holds the user's row and has seen it pending."""
        await self._session.execute(
            update(User)
            .where(User.object_id == user.object_id, User.status == UserStatus.EMAIL_CONFIRMATION_PENDING)
            .values(status=UserStatus.ENABLED, updated_at=now)
        )


def _link(row: asyncpg.Record) -> Link:
    return Link(
        app_id=row["app_id"],
        app_name=row["name"],
        identity_property=row["identity_property"],
        confirm_on_get=row["confirm_on_get"],
        confirmation_required=row["email_confirmation_required"],
        user_id=row["object_id"],
        status=UserStatus(row["status"]),
        expires_at=row["expires_at"],
        properties=row["properties"] or {},
        has_page_overrides=row["has_page_overrides"],
    )


def link_of(app: App, user: User, expires_at: datetime | None) -> Link:
    """The `Link` view of ORM objects, for rendering a page after a change."""
    return Link(
        app_id=app.app_id,
        app_name=app.name,
        identity_property=app.identity_property,
        confirm_on_get=app.confirm_on_get,
        confirmation_required=app.email_confirmation_required,
        user_id=user.object_id,
        status=user.status,
        expires_at=expires_at,
        properties=user.properties or {},
    )
