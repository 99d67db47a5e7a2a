"""The service layer: every operation of the registration API, over the repository, the password
hasher and the webhook. HTTP views and the admin command both call these and nothing else; they
take and return domain values (`Tenant`, `User`, `UserSession`), never wire JSON.

`Registrar.create_user` serves a client's `POST /users/register` and an operator's `userreg user
create` alike: the same checks and the same write, committing together or not at all. Nothing here
talks to RabbitMQ: the outbox relay publishes what committed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from userreg.registration import errors
from userreg.registration.accounts import Accounts, user_by_identity
from userreg.registration.profiles import Profiles
from userreg.registration.repository import Repository
from userreg.registration.rules.cors import ANY, CorsPolicy
from userreg.registration.rules.credentials import authorize, check_can_log_in, well_formed_app_id
from userreg.registration.rules.properties import GUID, LOCALE
from userreg.registration.rules.registration import (
    Candidate,
    check_registration_open,
    guest_to_convert,
    shared_mailbox,
    validate_registration,
)
from userreg.registration.rules.schema import check_dynamic_column_cap, fit_to_columns
from userreg.registration.rules.status import check_status_change
from userreg.registration.rules.values import storable_text
from userreg.registration.tenants import Tenant, TenantCache, find_tenant
from userreg.registration.webhook import BeforeRegisterWebhook
from userreg.shared import confirmations
from userreg.shared.clock import utcnow
from userreg.shared.db.models import User, UserStatus
from userreg.shared.hashing import HashingBusy, PasswordHashing
from userreg.shared.locales import DEFAULT_LOCALE
from userreg.shared.ratelimits import RateLimiter
from userreg.shared.tokens import hash_token, new_guid, new_token

logger = logging.getLogger(__name__)

RATE_LIMIT_BUCKET = "api {}"


@dataclass(frozen=True)
class UserSession:
    """A user and the `user-token` of the session just opened for it (a guest's, or a login's)."""

    user: User
    user_token: str


class Registrar:
    """Registration, guests, login and status changes for every app; its `accounts`: sessions,
    confirmation links and password recovery (`accounts.Accounts`), its `profiles`: a user's own record."""

    def __init__(
        self,
        repository: Repository,
        hashing: PasswordHashing,
        webhook: BeforeRegisterWebhook,
        *,
        public_confirmation_url: str,
        resend_cooldown_seconds: int,
        tenants: TenantCache[Tenant] | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        self._repository = repository
        self._tenants = tenants
        self._rate_limiter = rate_limiter
        self._hashing = hashing
        self._webhook = webhook
        self._public_confirmation_url = public_confirmation_url
        self._resend_cooldown_seconds = resend_cooldown_seconds
        self.accounts = Accounts(
            repository, public_confirmation_url=public_confirmation_url, resend_cooldown_seconds=resend_cooldown_seconds
        )
        self.profiles = Profiles(
            repository,
            hashing,
            self.accounts,
            public_confirmation_url=public_confirmation_url,
            resend_cooldown_seconds=resend_cooldown_seconds,
        )

    # --- apps --------------------------------------------------------------------------------

    async def load_tenant(self, app_id: str) -> Tenant:
        """The app with this appId (any case) and its schema; 2002 when there is none. Settings
        changed by the admin command apply at once (the cache, if any, is dropped on change)."""
        tenant = await self._find_tenant(app_id) if well_formed_app_id(app_id) else None
        if tenant is None:
            raise errors.InvalidApplication()
        return tenant

    async def authenticate(
        self,
        app_id: str,
        api_key: str,
        *,
        server_only: bool = False,
        client: str | None = None,
        registering: bool = False,
    ) -> Tenant:
        """The app a request names, checked in the documented order before its body is read: 2002 unless
        `api_key` is one of its keys, 3054 unless it is the server key when `server_only`; with
        `client` (the requester's address, for the operations a public key can flood), the app's
        `clientRateLimit` for REST-key requests (9008); when `registering` (a self-registration),
        3009 if the app's self-registration is off, so a closed app never reads the body (9003)."""
        tenant = await self._find_tenant(app_id) if well_formed_app_id(app_id) else None
        keys = (tenant.app.rest_api_key, tenant.app.server_api_key) if tenant else None
        is_server = authorize(keys, api_key, server_only=server_only)
        assert tenant is not None
        limit = tenant.rules.client_rate_limit
        if client is not None and not is_server and limit is not None and self._rate_limiter is not None:
            wait = await self._rate_limiter.hit(RATE_LIMIT_BUCKET.format(tenant.app.app_id), client, limit)
            if wait is not None:
                raise errors.RateLimited(
                    wait, f"Too many requests from this address (the app allows {limit}); retry in {wait} s"
                )
        if registering:
            check_registration_open(tenant.rules)
        return tenant

    async def cors_policy(self, app_id: str, api_key: str) -> CorsPolicy:
        """Which web pages may read an answer to a request for this app and key (docs/api.md, Browser clients), for
        the answers no view authenticated (preflights, unknown routes, refusals): the app's own
        policy, or any origin when the request names no app or a wrong key, whose answer is the
        same 2002 for both (so no web page learns which appIds exist)."""
        tenant = await self._find_tenant(app_id) if well_formed_app_id(app_id) else None
        keys = (tenant.app.rest_api_key, tenant.app.server_api_key) if tenant else None
        try:
            authorize(keys, api_key)
        except errors.ApiError:
            return ANY
        assert tenant is not None
        return tenant.rules.cors

    async def _find_tenant(self, app_id: str) -> Tenant | None:
        return await find_tenant(app_id.upper(), self._tenants, self._repository.find_app)

    # --- registration ------------------------------------------------------------------------

    async def create_user(
        self, tenant: Tenant, properties: Mapping[str, Any] | Iterable[tuple[str, Any]], *, locale: str = DEFAULT_LOCALE
    ) -> User:
        """A new user (or the guest named by `objectId`, converted) from its properties: a
        client's `POST /users/register` body, or an operator's `userreg user create`. docs/api.md, register's
        checks from 3043 on, the webhook (3014), the hashing queue (9009), the mailbox limits
        (9001) and the unique identity (3033). 3009 is not asked here: `authenticate(…,
        registering=True)` asks it of a client before the body is read, and an operator may add
        users to an app whose self-registration is off."""
        candidate = validate_registration(tenant.rules, properties, default_locale=locale)
        app = tenant.app
        if candidate.guest_object_id:
            # The documented order: an objectId that is no guest of the app (3021) is answered before the
            # webhook is asked (3014); the conversion checks again under the row's lock.
            guest = await self._repository.find_user_by_id(app.app_id, candidate.guest_object_id)
            guest_to_convert(guest, candidate.guest_object_id)
        if app.before_register_webhook_url:
            preview = dict(candidate.properties)
            if candidate.guest_object_id:
                preview["objectId"] = candidate.guest_object_id
            await self._webhook.check(app.before_register_webhook_url, app.app_id, preview)
        # Hash before writing: no connection is held while a worker is busy.
        password_hash = await self._hashing.hash(candidate.password)
        try:
            user = await self._write_registration(tenant, candidate, password_hash, utcnow())
        except confirmations.ResendTooSoon as refusal:
            raise errors.ResendTooSoon(refusal.retry_after_seconds, str(refusal)) from None
        logger.debug(
            "user registered app=%s user=%s guest=%s", app.app_id, user.object_id, bool(candidate.guest_object_id)
        )
        return user

    async def _write_registration(
        self, tenant: Tenant, candidate: Candidate, password_hash: str, now: datetime
    ) -> User:
        """The registered user, new or the converted guest, written with its token, its mailbox's
        record and its event in one statement (`Repository.save_registered_user`); in one
        transaction with the mailbox limits' check, the dynamic columns it adds and the guest's
        lock when there are any (else on an autocommit connection: no BEGIN/COMMIT round trips)."""
        app = tenant.app
        status = UserStatus.EMAIL_CONFIRMATION_PENDING if app.email_confirmation_required else UserStatus.ENABLED
        mailbox = shared_mailbox(tenant.rules, candidate)
        guest_id = candidate.guest_object_id
        in_transaction = bool(guest_id or candidate.new_columns or mailbox is not None)
        async with self._repository.connection(transaction=in_transaction) as connection:
            if mailbox is not None:
                await confirmations.check_mailbox(connection, app, mailbox, self._resend_cooldown_seconds, now)
            # New dynamic columns go first: the user's values must fit what they turn out to be. A
            # registration that fails later (3033) rolls them back with everything else.
            properties = dict(candidate.properties)
            if candidate.new_columns:
                check_dynamic_column_cap(
                    await self._repository.lock_schema(connection, app.app_id),
                    candidate.new_columns,
                    app.max_dynamic_columns,
                )
                columns = await self._repository.add_columns(connection, app.app_id, candidate.new_columns)
                properties = fit_to_columns(properties, candidate.new_columns, columns)
            if guest_id:
                user = guest_to_convert(
                    await self._repository.lock_user_by_id(connection, app.app_id, guest_id), guest_id
                )
                properties = {**user.properties, **properties}
            else:
                user = User(object_id=new_guid(), app_id=app.app_id, created_at=now)
            user.properties = properties
            user.identity_key = candidate.identity_key
            user.password_hash = password_hash
            user.status = status
            user.updated_at = now
            await self._repository.save_registered_user(
                connection,
                app,
                user,
                converted_guest=bool(guest_id),
                public_confirmation_url=self._public_confirmation_url,
            )
        return user

    async def register_guest(self, tenant: Tenant, *, locale: str = DEFAULT_LOCALE) -> UserSession:
        """A new GUEST user with a `user-token`; a later registration with its objectId converts it."""
        app = tenant.app
        now = utcnow()
        token = new_token()
        user = User(
            object_id=new_guid(),
            app_id=app.app_id,
            identity_key=None,
            properties={LOCALE: locale},
            password_hash=None,
            status=UserStatus.GUEST,
            created_at=now,
            updated_at=now,
        )
        await self._repository.create_guest(user, hash_token(token))
        return UserSession(user, token)

    # --- login -------------------------------------------------------------------------------

    async def log_in(self, tenant: Tenant, login: str, password: str) -> UserSession:
        """The user with a new `user-token`. 3003 for an unknown login or a wrong password, alike
        in answer and in time (an unknown login is verified against a dummy hash); then 3090 for
        a disabled user and 9002 for one who has not confirmed the email address."""
        user = None
        if storable_text(login):
            user = await self._repository.find_user(tenant.app.app_id, tenant.rules.identity_key(login))
        matches, needs_rehash = await self._hashing.verify(user.password_hash if user else None, password)
        if not matches:
            raise errors.InvalidLogin()
        assert user is not None
        check_can_log_in(user.status)
        now = utcnow()
        rehashed = None
        if needs_rehash:  # the argon2 settings went up since this hash was made
            with contextlib.suppress(HashingBusy):  # a busy queue rehashes at a later login
                rehashed = await self._hashing.hash(password)
        token = new_token()
        await self._repository.record_login(user, hash_token(token), at=now, password_hash=rehashed)
        user.last_login = now
        return UserSession(user, token)

    # --- operators' operations ---------------------------------------------------------------

    async def set_status(self, tenant: Tenant, object_id: str, target: UserStatus) -> bool:
        """Change a user's status (ENABLED↔DISABLED, EMAIL_CONFIRMATION_PENDING→ENABLED|DISABLED);
        True when it changed, False when it already was the target. 9004 for an unknown objectId,
        9006 for a transition that is not allowed. Disabling ends the user's sessions."""
        if not GUID.fullmatch(object_id):
            raise errors.UserNotFound()
        async with self._repository.connection(transaction=True) as connection:
            user = await self._repository.lock_user_by_id(connection, tenant.app.app_id, object_id.upper())
            if user is None:
                raise errors.UserNotFound()
            if not check_status_change(user.status, target):
                return False
            await self._repository.change_status(
                connection, user.object_id, target, at=utcnow(), end_sessions=target is UserStatus.DISABLED
            )
        logger.info("user status changed app=%s user=%s status=%s", tenant.app.app_id, object_id, target.value)
        return True

    async def find_user(self, tenant: Tenant, identity: str) -> User:
        """The user with this identity (compared case-insensitively); 3104."""
        return await user_by_identity(self._repository, tenant, identity)
