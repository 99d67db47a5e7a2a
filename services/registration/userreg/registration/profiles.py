"""The service layer of what a signed-in user does with its own record (the SDK's `update`,
`getCurrentUser(true)`, `verifyPassword`): read it, update it, check its password. Takes and
returns domain values, like `service.Registrar`, which builds it on the same repository
(`Registrar.profiles`).

Who may: the user itself, through a live session's `user-token`, or the server key for any user.
A token of another user answers 3029; none, or one that is no live session, 3064.

An update goes through register's rules (`rules.profile`) and writes in one transaction, holding
the user's row: the new dynamic columns, the properties, the identity (unique: 3033), and a new
password, which ends every other session and puts `user.password_changed` in the outbox (the
"your password was changed" notice). The password is hashed before the transaction, off the
event loop, in the hashing pool. In an app that confirms emails, a new address is kept aside and
a link that confirms it is emailed to it (`shared.email_changes`); the user keeps its old address
until the link is opened (confirmation-web applies it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from userreg.registration import errors
from userreg.registration.accounts import Accounts
from userreg.registration.repository import Repository
from userreg.registration.repository.profiles import save_profile
from userreg.registration.rules.profile import validate_update
from userreg.registration.rules.properties import EMAIL, GUID, PASSWORD_MAX_LENGTH
from userreg.registration.rules.schema import check_dynamic_column_cap, fit_to_columns
from userreg.registration.tenants import Tenant
from userreg.shared import email_changes, passwords
from userreg.shared.clock import utcnow
from userreg.shared.confirmations import ResendTooSoon
from userreg.shared.db.models import User
from userreg.shared.hashing import PasswordHashing
from userreg.shared.tokens import hash_token

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Caller:
    """Who asks: with the server key, or with the `user-token` header (None when absent)."""

    server_key: bool
    user_token: str | None


class Profiles:
    """Reading, updating and checking the password of one's own user, for every app."""

    def __init__(
        self,
        repository: Repository,
        hashing: PasswordHashing,
        accounts: Accounts,
        *,
        public_confirmation_url: str,
        resend_cooldown_seconds: int,
    ) -> None:
        self._repository = repository
        self._hashing = hashing
        self._accounts = accounts
        self._public_confirmation_url = public_confirmation_url
        self._resend_cooldown_seconds = resend_cooldown_seconds

    async def read(self, tenant: Tenant, object_id: str, caller: Caller) -> User:
        """The user with this objectId (3064, 3029, then 9004 when the server key names no user)."""
        return await self._load(tenant, await self._allowed(tenant, object_id, caller, "read"))

    async def update(
        self, tenant: Tenant, object_id: str, properties: Iterable[tuple[str, Any]], caller: Caller
    ) -> User:
        """The user with its properties changed (3064, 3029, 9004, then register's checks where
        they apply, 9009 and 3033). A new password ends every session but the caller's."""
        user = await self._load(tenant, await self._allowed(tenant, object_id, caller, "update"))
        change = validate_update(tenant.rules, properties, user)
        pending_identity = None
        if change.pending_email is not None and tenant.rules.identity_column.name.lower() == EMAIL:
            pending_identity = tenant.rules.identity_key(change.pending_email)
            if await self._repository.find_user(tenant.app.app_id, pending_identity) is not None:
                raise errors.IdentityTaken()
        password_hash = await self._hashing.hash(change.password) if change.password is not None else None
        app = tenant.app
        async with self._repository.session() as session:
            connection = await session.connection()
            locked = await self._repository.lock_user_by_id(connection, app.app_id, user.object_id)
            if locked is None:  # deleted since it was read
                raise errors.UserNotFound()
            user = locked
            changed = dict(change.properties)
            if change.new_columns:
                check_dynamic_column_cap(
                    await self._repository.lock_schema(connection, app.app_id),
                    change.new_columns,
                    app.max_dynamic_columns,
                )
                columns = await self._repository.add_columns(connection, app.app_id, change.new_columns)
                changed = fit_to_columns(changed, change.new_columns, columns)
            now = utcnow()
            user.properties = {**user.properties, **changed}
            if change.identity_key is not None:
                user.identity_key = change.identity_key
            user.updated_at = now
            await save_profile(connection, user)
            if password_hash is not None:
                own = hash_token(caller.user_token) if caller.user_token and not caller.server_key else None
                await passwords.change_password(session, app, user, password_hash, now, keep_session=own)
            if change.pending_email is not None:
                try:
                    await email_changes.request_email_change(
                        session,
                        app,
                        user,
                        change.pending_email,
                        pending_identity,
                        self._public_confirmation_url,
                        self._resend_cooldown_seconds,
                        now,
                    )
                except ResendTooSoon as refusal:
                    raise errors.ResendTooSoon(refusal.retry_after_seconds, str(refusal)) from None
        logger.info(
            "user updated app=%s user=%s password=%s email_change=%s",
            app.app_id,
            user.object_id,
            password_hash is not None,
            change.pending_email is not None,
        )
        return user

    async def verify_password(self, tenant: Tenant, token: str | None, password: str) -> bool:
        """Whether `password` is the password of the user signed in with `token` (3064 when the
        token is no live session). Always verified in the hashing pool (a guest, who has none,
        against a dummy hash), so that the answer takes the same time either way."""
        object_id = await self._accounts.session_user_id(tenant, token)
        if object_id is None:
            raise errors.UserTokenNotFound()
        user = await self._repository.find_user_by_id(tenant.app.app_id, object_id)
        candidate = password[: PASSWORD_MAX_LENGTH + 1]  # a longer one is no stored password; hash no more
        matches, _ = await self._hashing.verify(user.password_hash if user else None, candidate)
        return matches and len(password) <= PASSWORD_MAX_LENGTH

    async def _load(self, tenant: Tenant, object_id: str) -> User:
        user = await self._repository.find_user_by_id(tenant.app.app_id, object_id)
        if user is None:
            raise errors.UserNotFound()
        return user

    async def _allowed(self, tenant: Tenant, object_id: str, caller: Caller, what: str) -> str:
        """The objectId (upper case) the caller may `what`: any with the server key, else its own."""
        if caller.server_key:
            if not GUID.fullmatch(object_id):
                raise errors.UserNotFound()
            return object_id.upper()
        own = await self._accounts.session_user_id(tenant, caller.user_token)
        if own is None:
            raise errors.UserTokenNotFound()
        if own != object_id.upper():
            if what == "read":
                raise errors.AnotherUser("A user's record is read with its own user-token or the server key")
            raise errors.AnotherUser()
        return own
