"""The service layer: every operation of the registration API, over the database, the password
hasher and the webhook. HTTP views and the admin command both call these and nothing else.

`Registrar.register` (a client's request) and `Registrar.create_user` (an operator) run the same
checks and the same transaction: user row, confirmation token (when the app confirms emails) and
the `user.registered` outbox row commit together or not at all. Nothing here talks to RabbitMQ:
the outbox relay publishes what committed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from userreg.registration import errors, rules
from userreg.registration.hashing import PasswordHashing
from userreg.registration.representation import user_json
from userreg.registration.rules import AppRules, Candidate
from userreg.registration.tenants import TenantCache
from userreg.registration.webhook import BeforeRegisterWebhook
from userreg.shared import confirmations
from userreg.shared.clock import utcnow
from userreg.shared.confirmations import (
    issue_confirmation,
    mailbox_of,
    new_confirmation,
    request_new_confirmation,
    user_event,
)
from userreg.shared.db.models import (
    App,
    ColumnType,
    ConfirmationToken,
    MailboxEmail,
    OutboxEvent,
    SchemaColumn,
    SessionToken,
    User,
    UserStatus,
)
from userreg.shared.events import USER_REGISTERED
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.outbox import enqueue, outbox_row
from userreg.shared.ratelimits import RateLimiter
from userreg.shared.tokens import hash_token, new_guid, new_token

logger = logging.getLogger(__name__)

IDENTITY_INDEX = "uq_users_app_identity"
# An app and its schema in one round trip: one row per column (the app's columns repeated).
TENANT_QUERY = select(
    App.__table__,
    SchemaColumn.name.label("column_name"),
    SchemaColumn.type.label("column_type"),
    SchemaColumn.required.label("column_required"),
    SchemaColumn.max_length.label("column_max_length"),
    SchemaColumn.is_identity.label("column_is_identity"),
    SchemaColumn.built_in.label("column_built_in"),
).outerjoin(SchemaColumn, SchemaColumn.app_id == App.app_id).where(App.app_id == bindparam("app_id"))


class _RowInsert:
    """An INSERT of one row of a model's table as a CTE whose values are bind parameters."""

    def __init__(self, model: type, name: str, columns: tuple[str, ...]) -> None:
        self.name = name
        self.columns = columns
        table = model.__table__
        self.cte = insert(table).values({
            column: bindparam(f"{name}_{column}", type_=table.c[column].type) for column in columns
        }).cte(name)

    def parameters(self, row: Any) -> dict[str, Any]:
        return {f"{self.name}_{column}": getattr(row, column) for column in self.columns}


_USER_ROW = _RowInsert(User, "u", ("object_id", "app_id", "identity_key", "properties", "password_hash",
                                   "status", "created_at", "updated_at"))
_TOKEN_ROW = _RowInsert(ConfirmationToken, "t",
                        ("token_hash", "app_id", "user_id", "created_at", "expires_at"))
_OUTBOX_ROW = _RowInsert(OutboxEvent, "o", ("event_id", "routing_key", "payload"))
_MAILBOX_ROW = _RowInsert(MailboxEmail, "m", ("app_id", "mailbox", "sent_at"))
# A new user, its confirmation token (when the app confirms emails) and its `user.registered` outbox
# row in ONE statement: atomic on its own (no BEGIN/COMMIT round trips), and a duplicate identity
# fails the whole statement on the unique index, so nothing of a losing registration remains.
CREATE_USER = select(literal_column("1")).add_cte(_USER_ROW.cte, _OUTBOX_ROW.cte)
CREATE_PENDING_USER = select(literal_column("1")).add_cte(_USER_ROW.cte, _TOKEN_ROW.cte, _MAILBOX_ROW.cte,
                                                          _OUTBOX_ROW.cte)
# Registrations that add dynamic columns serialise per app on this lock, so the cap holds.
COLUMNS_LOCK = "columns {}"
RATE_LIMIT_BUCKET = "api {}"


@dataclass(frozen=True)
class Tenant:
    """An app as read for one request: its row (detached) and the rules its schema makes."""

    app: App
    rules: AppRules


class Registrar:
    """Registration, guests, login, status changes and confirmation links for every app."""

    def __init__(self, sessions: async_sessionmaker, hashing: PasswordHashing, webhook: BeforeRegisterWebhook,
                 *, public_confirmation_url: str, resend_cooldown_seconds: int,
                 tenants: TenantCache[Tenant] | None = None, rate_limiter: RateLimiter | None = None) -> None:
        self._sessions = sessions
        self._tenants = tenants
        self._rate_limiter = rate_limiter
        self._engine = sessions.kw["bind"]
        # Single statements (reads, and the one-statement registration) run on AUTOCOMMIT
        # connections of the same pool: no BEGIN/COMMIT/ROLLBACK round trips.
        self._autocommit = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._reads = async_sessionmaker(self._autocommit, expire_on_commit=False)
        self._hashing = hashing
        self._webhook = webhook
        self._public_confirmation_url = public_confirmation_url
        self._resend_cooldown_seconds = resend_cooldown_seconds

    # --- apps --------------------------------------------------------------------------------

    async def load_tenant(self, app_id: str) -> Tenant:
        """The app with this appId (any case) and its schema; 2002 when there is none. Settings
        changed by the admin command apply at once (the cache, if any, is dropped on change)."""
        tenant = await self._find_tenant(app_id) if rules.well_formed_app_id(app_id) else None
        if tenant is None:
            raise errors.InvalidApplication()
        return tenant

    async def authenticate(self, app_id: str, api_key: str, *, server_only: bool = False,
                           client: str | None = None) -> Tenant:
        """The app a request names, if `api_key` is one of its keys (2002), the server key when
        `server_only` (3054). With `client` (the requester's address, for the operations a public
        key can flood), the app's `clientRateLimit` applies to REST-key requests (9008)."""
        tenant = await self._find_tenant(app_id) if rules.well_formed_app_id(app_id) else None
        keys = (tenant.app.rest_api_key, tenant.app.server_api_key) if tenant else None
        is_server = rules.authorize(keys, api_key, server_only=server_only)
        assert tenant is not None
        limit = tenant.rules.client_rate_limit
        if client is not None and not is_server and limit is not None and self._rate_limiter is not None:
            wait = await self._rate_limiter.hit(RATE_LIMIT_BUCKET.format(tenant.app.app_id), client, limit)
            if wait is not None:
                raise errors.RateLimited(wait, f"Too many requests from this address (the app allows {limit});"
                                               f" retry in {wait} s")
        return tenant

    async def _find_tenant(self, app_id: str) -> Tenant | None:
        key = app_id.upper()
        generation = 0
        if self._tenants is not None:
            cached = self._tenants.get(key)
            if cached is not None:
                return cached
            generation = self._tenants.generation
        async with self._autocommit.connect() as connection:
            rows = (await connection.execute(TENANT_QUERY, {"app_id": key})).all()
        if not rows:
            return None
        app = App(**{column.key: rows[0]._mapping[column] for column in App.__table__.columns})
        columns = [rules.Column(row.column_name, ColumnType(row.column_type), row.column_required,
                                row.column_max_length, row.column_is_identity, row.column_built_in)
                   for row in rows if row.column_name is not None]
        tenant = Tenant(app, AppRules.of(app, columns))
        if self._tenants is not None:
            self._tenants.put(key, tenant, generation)
        return tenant

    # --- registration ------------------------------------------------------------------------

    async def register(self, tenant: Tenant, content_type: str | None, body: bytes, *,
                       locale: str = rules.DEFAULT_LOCALE) -> dict[str, Any]:
        """A client's `POST /users/register`: SPEC §3.1's checks in order, then the user is
        created. Returns the user as the API answers it."""
        candidate = rules.check_registration(tenant.rules, content_type, body, default_locale=locale)
        return await self._register(tenant, candidate)

    async def create_user(self, tenant: Tenant, properties: Mapping[str, Any] | Iterable[tuple[str, Any]], *,
                          locale: str = rules.DEFAULT_LOCALE) -> dict[str, Any]:
        """An operator's `userreg user create`: the same rules (except 3009: an operator may add
        users to an app whose self-registration is off), the same webhook and the same
        transaction, so the user gets the confirmation email when the app requires one."""
        candidate = rules.validate_registration(tenant.rules, properties, default_locale=locale)
        return await self._register(tenant, candidate)

    async def _register(self, tenant: Tenant, candidate: Candidate) -> dict[str, Any]:
        app = tenant.app
        if candidate.guest_object_id:
            # SPEC order: an objectId that is no guest of the app (3021) is answered before the
            # webhook is asked (3014); the conversion checks again under the row's lock.
            async with self._sessions() as session:
                await self._guest(session, app, candidate.guest_object_id, for_update=False)
        if app.before_register_webhook_url:
            preview = dict(candidate.properties)
            if candidate.guest_object_id:
                preview["objectId"] = candidate.guest_object_id
            await self._webhook.check(app.before_register_webhook_url, app.app_id, preview)
        # Hash before writing: no connection is held while a worker is busy.
        password_hash = await self._hashing.hash(candidate.password)
        now = utcnow()
        status = (UserStatus.EMAIL_CONFIRMATION_PENDING if app.email_confirmation_required
                  else UserStatus.ENABLED)
        try:
            if candidate.guest_object_id:
                user = await self._convert_guest(tenant, candidate, password_hash, status, now)
            else:
                user = await self._create_user(tenant, candidate, password_hash, status, now)
        except IntegrityError as error:
            if _violated_constraint(error) == IDENTITY_INDEX:
                raise errors.IdentityTaken() from None
            raise
        except confirmations.ResendTooSoon as refusal:
            raise errors.ResendTooSoon(refusal.retry_after_seconds, str(refusal)) from None
        logger.debug("user registered app=%s user=%s guest=%s", app.app_id, user.object_id,
                     bool(candidate.guest_object_id))
        return user_json(user)

    async def _create_user(self, tenant: Tenant, candidate: Candidate, password_hash: str,
                           status: UserStatus, now: datetime) -> User:
        """The new user, written with its token, its mailbox's record and its event in one statement;
        in one transaction with the dynamic columns it adds and the mailbox limits' check, when
        there are any (else on an autocommit connection: no BEGIN/COMMIT round trips)."""
        app = tenant.app
        mailbox = self._shared_mailbox(tenant, candidate)
        in_transaction = bool(candidate.new_columns) or mailbox is not None
        async with (self._engine if in_transaction else self._autocommit).begin() as connection:
            if mailbox is not None:
                await confirmations.check_mailbox(connection, app, mailbox, self._resend_cooldown_seconds, now)
            # New dynamic columns go first: the user's values must fit what they turn out to be. A
            # registration that fails later (3033) rolls them back with everything else.
            properties = await self._add_columns(connection, tenant, candidate)
            user = User(object_id=new_guid(), app_id=app.app_id, identity_key=candidate.identity_key,
                        properties=properties, password_hash=password_hash, status=status,
                        created_at=now, updated_at=now)
            parameters = _USER_ROW.parameters(user)
            statement = CREATE_USER
            confirmation = None
            if app.email_confirmation_required:
                token, confirmation = new_confirmation(app, user, self._public_confirmation_url, now)
                parameters |= _TOKEN_ROW.parameters(token)
                parameters |= _MAILBOX_ROW.parameters(confirmations.mailbox_email(app, mailbox_of(user), now))
                statement = CREATE_PENDING_USER
            event = user_event(USER_REGISTERED, app, user, confirmation)
            parameters |= _OUTBOX_ROW.parameters(outbox_row(event))
            await connection.execute(statement, parameters)
        return user

    @staticmethod
    def _shared_mailbox(tenant: Tenant, candidate: Candidate) -> str | None:
        """The mailbox the confirmation email goes to, when other users of the app may share it (the
        identity is not the email address) and so its limits must be checked first; else None
        (an email identity is unique: its mailbox belongs to this user alone)."""
        email = candidate.properties.get(rules.EMAIL)
        if not tenant.app.email_confirmation_required or tenant.rules.identity_column.name.lower() == rules.EMAIL:
            return None
        return mailbox_key(email) if isinstance(email, str) and email else None

    async def _convert_guest(self, tenant: Tenant, candidate: Candidate, password_hash: str,
                             status: UserStatus, now: datetime) -> User:
        """The guest, now registered: the same row (same objectId), its token and event, in one
        transaction that holds the guest's row so that it is converted once."""
        app = tenant.app
        async with self._sessions() as session, session.begin():
            mailbox = self._shared_mailbox(tenant, candidate)
            if mailbox is not None:
                await confirmations.check_mailbox(session, app, mailbox, self._resend_cooldown_seconds, now)
            properties = await self._add_columns(session, tenant, candidate)
            user = await self._guest(session, app, candidate.guest_object_id, for_update=True)
            user.properties = {**user.properties, **properties}
            user.identity_key = candidate.identity_key
            user.password_hash = password_hash
            user.status = status
            user.updated_at = now
            await session.flush()  # the unique identity index refuses a taken identity here
            confirmation = None
            if app.email_confirmation_required:
                confirmation = issue_confirmation(session, app, user, self._public_confirmation_url, now)
                session.add(confirmations.mailbox_email(app, mailbox_of(user), now))
            enqueue(session, user_event(USER_REGISTERED, app, user, confirmation))
        return user

    async def _add_columns(self, connection: Any, tenant: Tenant, candidate: Candidate) -> dict[str, Any]:
        """Add the candidate's dynamic columns (dynamicSchema on), in the caller's transaction; the
        properties under the names the columns finally have. A column another request created
        meanwhile is reused, and the value must fit its type. 9007 when the app's schema would pass
        `maxDynamicColumns` (checked again here, under a per-app lock: the cached schema may be old)."""
        properties = dict(candidate.properties)
        if not candidate.new_columns:
            return properties
        app_id = tenant.app.app_id
        await connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(COLUMNS_LOCK.format(app_id)))))
        existing = dict((await connection.execute(
            select(SchemaColumn.name_key, SchemaColumn.built_in).where(SchemaColumn.app_id == app_id))).all())
        added = [column for column in candidate.new_columns if column.name.lower() not in existing]
        dynamic = sum(1 for built_in in existing.values() if not built_in)
        if added and dynamic + len(added) > tenant.app.max_dynamic_columns:
            raise errors.TooManyDynamicColumns(
                f"The app's Users schema may have {tenant.app.max_dynamic_columns} columns besides the "
                f"built-in ones; this registration would add {len(added)} to its {dynamic}")
        statement = postgresql.insert(SchemaColumn).values([
            {"app_id": tenant.app.app_id, "name_key": column.name.lower(), "name": column.name,
             "type": column.type, "required": False, "max_length": column.max_length,
             "is_identity": False, "built_in": False}
            for column in candidate.new_columns  # sorted by name: concurrent inserts lock in one order
        ])
        # DO UPDATE (a no-op) rather than DO NOTHING so that RETURNING also gives the existing rows.
        statement = statement.on_conflict_do_update(
            index_elements=[SchemaColumn.app_id, SchemaColumn.name_key],
            set_={"name_key": statement.excluded.name_key},
        ).returning(SchemaColumn.name, SchemaColumn.type, SchemaColumn.max_length)
        for name, column_type, max_length in (await connection.execute(statement)).all():
            sent = next(column.name for column in candidate.new_columns
                        if column.name.lower() == name.lower())
            value = rules.clean_value(sent, properties.pop(sent), ColumnType(column_type))
            if isinstance(value, str) and max_length is not None and len(value) > max_length:
                raise errors.ValueTooLong(
                    f"The value of {rules.shown(sent)} is longer than {max_length} characters")
            properties[name] = value
        return properties

    async def _guest(self, session: AsyncSession, app: App, object_id: str, *, for_update: bool) -> User:
        query = select(User).where(User.object_id == object_id, User.app_id == app.app_id)
        user = await session.scalar(query.with_for_update() if for_update else query)
        if user is None or user.status is not UserStatus.GUEST:
            raise errors.RegistrationError(f"objectId {object_id} is not a guest user of this app")
        return user

    async def register_guest(self, tenant: Tenant, *, locale: str = rules.DEFAULT_LOCALE) -> dict[str, Any]:
        """A new GUEST user with a `user-token`; a later registration with its objectId converts it."""
        app = tenant.app
        now = utcnow()
        token = new_token()
        user = User(object_id=new_guid(), app_id=app.app_id, identity_key=None,
                    properties={rules.LOCALE: locale}, password_hash=None, status=UserStatus.GUEST,
                    created_at=now, updated_at=now)
        async with self._sessions() as session, session.begin():
            session.add(user)
            await session.flush()
            session.add(SessionToken(token_hash=hash_token(token), app_id=app.app_id, user_id=user.object_id,
                                     created_at=now))
        return user_json(user, user_token=token)

    # --- login -------------------------------------------------------------------------------

    async def log_in(self, tenant: Tenant, login: str, password: str) -> dict[str, Any]:
        """The user with a new `user-token`. 3003 for an unknown login or a wrong password, alike
        in answer and in time (an unknown login is verified against a dummy hash); then 3090 for
        a disabled user and 9002 for one who has not confirmed the email address."""
        app = tenant.app
        user = None
        if rules.storable_text(login):
            async with self._reads() as session:
                user = await session.scalar(select(User).where(
                    User.app_id == app.app_id, User.identity_key == tenant.rules.identity_key(login)))
        matches, needs_rehash = await self._hashing.verify(user.password_hash if user else None, password)
        if not matches:
            raise errors.InvalidLogin()
        assert user is not None
        rules.check_can_log_in(user.status)
        changes: dict[str, Any] = {"last_login": utcnow()}
        if needs_rehash:  # the argon2 settings went up since this hash was made
            with contextlib.suppress(errors.HashingBusy):  # a busy queue rehashes at a later login
                changes["password_hash"] = await self._hashing.hash(password)
        token = new_token()
        async with self._sessions() as session, session.begin():
            await session.execute(update(User).where(User.object_id == user.object_id).values(**changes))
            session.add(SessionToken(token_hash=hash_token(token), app_id=app.app_id, user_id=user.object_id,
                                     created_at=changes["last_login"]))
        user.last_login = changes["last_login"]
        return user_json(user, user_token=token)

    # --- operators' operations ---------------------------------------------------------------

    async def set_status(self, tenant: Tenant, object_id: str, target: UserStatus) -> bool:
        """Change a user's status (ENABLED↔DISABLED, EMAIL_CONFIRMATION_PENDING→ENABLED|DISABLED);
        True when it changed, False when it already was the target. 9004 for an unknown objectId,
        9006 for a transition that is not allowed. Disabling ends the user's sessions."""
        if not rules.GUID.fullmatch(object_id):
            raise errors.UserNotFound()
        async with self._sessions() as session, session.begin():
            user = await session.scalar(select(User).where(
                User.object_id == object_id.upper(), User.app_id == tenant.app.app_id).with_for_update())
            if user is None:
                raise errors.UserNotFound()
            if not rules.check_status_change(user.status, target):
                return False
            user.status = target
            user.updated_at = utcnow()
            if target is UserStatus.DISABLED:
                await session.execute(delete(SessionToken).where(SessionToken.user_id == user.object_id))
        logger.info("user status changed app=%s user=%s status=%s", tenant.app.app_id, object_id,
                    target.value)
        return True

    async def find_user(self, tenant: Tenant, identity: str) -> dict[str, Any]:
        """The user with this identity (compared case-insensitively), as the API shows users; 3104."""
        async with self._sessions() as session:
            return user_json(await self._user_by_identity(session, tenant.app, identity))

    async def create_confirmation_url(self, tenant: Tenant, identity: str) -> str:
        """A new confirmation link for a pending user, returned and not emailed (the caller sends
        it its own way). 3103 when the app does not confirm emails, 3104 unknown identity, 3102
        when the user is not waiting for confirmation."""
        app = tenant.app
        if not app.email_confirmation_required:
            raise errors.ConfirmationNotEnabled()
        async with self._sessions() as session, session.begin():
            user = await self._user_by_identity(session, app, identity)
            if user.status is not UserStatus.EMAIL_CONFIRMATION_PENDING:
                raise _not_pending(user.status)
            confirmation = issue_confirmation(session, app, user, self._public_confirmation_url)
        return confirmation.url

    async def resend_confirmation(self, tenant: Tenant, identity: str) -> None:
        """Issue and email a new confirmation link (`user.confirmation_requested`); earlier
        unexpired links keep working. 3103, 3104, 3102, and 9001 within the cool-down."""
        app = tenant.app
        if not app.email_confirmation_required:
            raise errors.ConfirmationNotEnabled()
        async with self._sessions() as session, session.begin():
            user = await self._user_by_identity(session, app, identity)
            try:
                await request_new_confirmation(session, app, user, self._public_confirmation_url,
                                               self._resend_cooldown_seconds)
            except confirmations.ConfirmationNotRequired:
                raise errors.ConfirmationNotEnabled() from None
            except confirmations.AlreadyConfirmed:
                raise _not_pending(user.status) from None
            except confirmations.ResendTooSoon as refusal:
                raise errors.ResendTooSoon(refusal.retry_after_seconds, str(refusal)) from None

    async def _user_by_identity(self, session: AsyncSession, app: App, identity: str) -> User:
        user = None
        if rules.storable_text(identity):
            user = await session.scalar(select(User).where(
                User.app_id == app.app_id,
                User.identity_key == rules.identity_key(identity, app.identity_property)))
        if user is None:
            raise errors.IdentityNotFound()
        return user


def _not_pending(status: UserStatus) -> errors.AlreadyConfirmed:
    if status is UserStatus.ENABLED:
        return errors.AlreadyConfirmed()
    return errors.AlreadyConfirmed(f"The user is {status.value}: there is no email address to confirm")


def _violated_constraint(error: IntegrityError) -> str | None:
    """The name of the constraint an IntegrityError broke (asyncpg keeps it on the cause)."""
    for candidate in (error.orig, getattr(error.orig, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if name:
            return name
    return None
