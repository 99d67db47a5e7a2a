"""The service layer of what a user does with an account once it has one (docs/api.md, Sessions
and password recovery): its sessions (is a `user-token` valid, log out; an operator lists and ends
them, or deletes the user and all of it) and password recovery (a reset link emailed on
`restorepassword`). Takes and returns domain values, like `service.Registrar`, which builds it on
the same repository (`Registrar.accounts`).

A session is a `user-token` stored as its SHA-256 digest; it ends `sessionTtl` seconds after its
last use (`rules.sessions`: a use is written down at most once a minute), when the user logs out,
is disabled, or has its password changed. The reset link is issued by
`shared.passwords.request_password_reset` (as confirmation-web issues one from its expired page):
the token is stored as its digest, the link leaves only in the outbox event
`user.password_reset_requested`, never in a log line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from userreg.registration import errors
from userreg.registration.repository import Repository
from userreg.registration.repository import sessions as session_queries
from userreg.registration.rules.properties import GUID
from userreg.registration.rules.sessions import SessionInfo, is_expired, needs_refresh, session_info
from userreg.registration.rules.status import not_pending
from userreg.registration.rules.values import storable_text
from userreg.registration.tenants import Tenant
from userreg.shared import confirmations, passwords
from userreg.shared.clock import utcnow
from userreg.shared.db.models import User, UserStatus
from userreg.shared.tokens import hash_token, is_well_formed

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

logger = logging.getLogger(__name__)


async def user_by_identity(
    repository: Repository,
    tenant: Tenant,
    identity: str,
    session: AsyncSession | None = None,
    *,
    missing: type[errors.ApiError] = errors.IdentityNotFound,
) -> User:
    """The user with this identity (compared as the app compares identities), in the session's
    transaction when given; `missing` (3104 unless told) when there is none."""
    user = None
    if storable_text(identity):
        user = await repository.find_user(tenant.app.app_id, tenant.rules.identity_key(identity), session)
    if user is None:
        raise missing()
    return user


class Accounts:
    """Sessions, confirmation links and password recovery for the users of every app."""

    def __init__(self, repository: Repository, *, public_confirmation_url: str, resend_cooldown_seconds: int) -> None:
        self._repository = repository
        self._public_confirmation_url = public_confirmation_url
        self._resend_cooldown_seconds = resend_cooldown_seconds

    # --- a client's sessions ----------------------------------------------------------------

    async def is_valid_user_token(self, tenant: Tenant, token: str) -> bool:
        """True while the token is a session of the app that has not ended or expired; the check
        is a use of the session (its last use is written down when it is worth it)."""
        return await self.session_user_id(tenant, token) is not None

    async def session_user_id(self, tenant: Tenant, token: str | None) -> str | None:
        """The objectId of the user whose live session of the app the token is, None when it is
        none (missing, malformed, unknown, ended, expired). A use of the session."""
        if not token or not is_well_formed(token):
            return None
        digest, now, ttl = hash_token(token), utcnow(), tenant.app.session_ttl
        async with self._repository.connection(transaction=False) as connection:
            found = await session_queries.user_of(connection, tenant.app.app_id, digest)
            if found is None or is_expired(found[1], ttl, now):
                return None
            if needs_refresh(found[1], ttl, now):
                await session_queries.record_use(connection, digest, now)
        return found[0]

    async def log_out(self, tenant: Tenant, token: str | None) -> None:
        """End the session of this token; 3064 when there is no token or no live session of the
        app with it (unknown, already ended, expired)."""
        if not token or not is_well_formed(token):
            raise errors.UserTokenNotFound()
        async with self._repository.connection(transaction=False) as connection:
            last_used = await session_queries.end(connection, tenant.app.app_id, hash_token(token))
        if last_used is None or is_expired(last_used, tenant.app.session_ttl, utcnow()):
            raise errors.UserTokenNotFound()

    # --- an operator's view of them ---------------------------------------------------------

    async def sessions_of(self, tenant: Tenant, identity: str) -> list[SessionInfo]:
        """The sessions of the user with this identity, oldest first, expired ones included (3104)."""
        user = await user_by_identity(self._repository, tenant, identity)
        async with self._repository.connection(transaction=False) as connection:
            rows = await session_queries.of_user(connection, user.object_id)
        now = utcnow()
        return [session_info(created, used, tenant.app.session_ttl, now) for created, used in rows]

    async def end_sessions(self, tenant: Tenant, identity: str) -> int:
        """End every session of the user with this identity (3104); how many it had."""
        user = await user_by_identity(self._repository, tenant, identity)
        async with self._repository.connection(transaction=False) as connection:
            ended = await session_queries.end_all_of_user(connection, user.object_id)
        logger.info("sessions ended app=%s user=%s sessions=%d", tenant.app.app_id, user.object_id, ended)
        return ended

    async def delete_user(self, tenant: Tenant, object_id: str) -> None:
        """Delete the user with this objectId, its sessions and links with it (9004 when the app
        has none): an operator's `user.delete`."""
        if not GUID.fullmatch(object_id) or not await self._repository.delete_user(
            tenant.app.app_id, object_id.upper()
        ):
            raise errors.UserNotFound()
        logger.info("user deleted app=%s user=%s", tenant.app.app_id, object_id.upper())

    # --- password recovery --------------------------------------------------------------------

    async def restore_password(self, tenant: Tenant, identity: str) -> None:
        """Email the user a password-reset link (`user.password_reset_requested` through the
        outbox). 3020 when no user has this identity; 9001 within the cool-down of the user's last
        reset link or of its mailbox's last email, or past the mailbox's daily emails. A disabled
        user gets the link like anyone (the reset page then refuses it), a pending one too."""
        app = tenant.app
        async with self._repository.session() as session:
            user = await user_by_identity(self._repository, tenant, identity, session, missing=errors.UnknownIdentity)
            try:
                await passwords.request_password_reset(
                    session, app, user, self._public_confirmation_url, self._resend_cooldown_seconds
                )
            except confirmations.ResendTooSoon as refusal:
                raise errors.ResendTooSoon(refusal.retry_after_seconds, str(refusal)) from None
        logger.info("password reset requested app=%s user=%s", app.app_id, user.object_id)

    # --- confirmation links -----------------------------------------------------------------

    async def create_confirmation_url(self, tenant: Tenant, identity: str) -> str:
        """A new confirmation link for a pending user, returned and not emailed (the caller sends
        it its own way). 3103 when the app does not confirm emails, 3104 unknown identity, 3102
        when the user is not waiting for confirmation."""
        app = tenant.app
        if not app.email_confirmation_required:
            raise errors.ConfirmationNotEnabled()
        async with self._repository.session() as session:
            user = await user_by_identity(self._repository, tenant, identity, session)
            if user.status is not UserStatus.EMAIL_CONFIRMATION_PENDING:
                raise not_pending(user.status)
            confirmation = confirmations.issue_confirmation(session, app, user, self._public_confirmation_url)
        return confirmation.url

    async def resend_confirmation(self, tenant: Tenant, identity: str) -> None:
        """Issue and email a new confirmation link (`user.confirmation_requested`); earlier
        unexpired links keep working. 3103, 3104, 3102, and 9001 within the cool-down."""
        app = tenant.app
        if not app.email_confirmation_required:
            raise errors.ConfirmationNotEnabled()
        async with self._repository.session() as session:
            user = await user_by_identity(self._repository, tenant, identity, session)
            try:
                await confirmations.request_new_confirmation(
                    session, app, user, self._public_confirmation_url, self._resend_cooldown_seconds
                )
            except confirmations.ConfirmationNotRequired:
                raise errors.ConfirmationNotEnabled() from None
            except confirmations.AlreadyConfirmed:
                raise not_pending(user.status) from None
            except confirmations.ResendTooSoon as refusal:
                raise errors.ResendTooSoon(refusal.retry_after_seconds, str(refusal)) from None
