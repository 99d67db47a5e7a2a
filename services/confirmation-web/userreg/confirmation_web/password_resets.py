"""What happens when a password-reset link is opened, used or renewed (docs/api.md, Sessions and password
recovery): the service of the reset pages, as `service.Confirmations` is of the confirmation pages. Each
action takes plain values from the view and returns an `Outcome`; the database work is the repository's, the writes
in one explicit transaction.

Setting a password costs an argon2id hash, the one slow step, so it runs in the hashing workers
(off the event loop) BEFORE the transaction opens: no connection or row lock is held while hashing.
Only a link that is still usable and a password the form accepts are hashed; the transaction then
checks again, holding the user's and the token's rows, that the link is still there and unexpired
(two POSTs of one link: one changes the password, the other finds the link used).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter

from userreg.confirmation_web.model import Failure, Outcome, PasswordProblem, Resend
from userreg.confirmation_web.repository import Repository, link_of
from userreg.confirmation_web.rules.outcomes import show, show_failure
from userreg.confirmation_web.rules.passwords import password_problem, reset_outcome, retry_after
from userreg.shared.clock import utcnow
from userreg.shared.confirmations import ResendTooSoon, user_event
from userreg.shared.db.models import UserStatus
from userreg.shared.events import USER_CONFIRMED
from userreg.shared.hashing import HashingBusy, HashingUnavailable, PasswordHashing
from userreg.shared.templates import Page
from userreg.shared.tokens import hash_token, is_well_formed

logger = logging.getLogger(__name__)

PASSWORD_RESETS = Counter("userreg_password_resets_total", "Passwords set through a reset link, by result", ["result"])
RESET_RESENDS = Counter(
    "userreg_password_reset_resends_total", "New reset links asked for on the expired page", ["result"]
)
# When hashing failed for want of a worker (one died and is being replaced): try again after this.
HASHING_UNAVAILABLE_RETRY_SECONDS = 5


class PasswordResets:
    """The three things a visitor can do with a reset link: open it, set a password, ask for a new one."""

    def __init__(
        self,
        repository: Repository,
        hashing: PasswordHashing,
        public_confirmation_url: str,
        resend_cooldown_seconds: int,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repository = repository
        self._hashing = hashing
        self._public_url = public_confirmation_url
        self._cooldown = resend_cooldown_seconds
        self._clock = clock

    async def open(self, app_id: str, token: str) -> Outcome:
        """GET/HEAD of a reset link: show its page. Never changes anything (mail scanners open it)."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        link = await self._repository.find_reset_link(app_id, hash_token(token))
        if link is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        return reset_outcome(link, token, self._clock())

    async def set_password(self, app_id: str, token: str, password: str, repeat: str) -> Outcome:
        """The form's POST: check the password, hash it, then in one transaction store it, end every
        session and reset link of the user, confirm a pending user, and write the events."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        token_hash = hash_token(token)
        link = await self._repository.find_reset_link(app_id, token_hash)
        if link is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        outcome = reset_outcome(link, token, self._clock())
        if outcome.page is not Page.PASSWORD_RESET:
            return outcome  # expired, or a user who may not reset: nothing is hashed
        problem = password_problem(password, repeat)
        if problem is not None:
            PASSWORD_RESETS.labels(problem).inc()
            return show(Page.PASSWORD_RESET, link, token, status=400, password_problem=problem)
        try:
            password_hash = await self._hashing.hash(password)
        except HashingBusy as busy:
            return self._busy(outcome, retry_after(busy.retry_after_seconds))
        except HashingUnavailable:
            logger.error("app %s: no hashing worker could hash a reset password", link.app_id)
            return self._busy(outcome, HASHING_UNAVAILABLE_RETRY_SECONDS)
        changed = await self._change(app_id, token_hash, token, link.user_id, password_hash)
        return changed if changed is not None else await self.failed(app_id, Failure.UNKNOWN)

    async def _change(
        self, app_id: str, token_hash: bytes, token: str, user_id: str, password_hash: str
    ) -> Outcome | None:
        """The reset's one transaction, holding the user's and the token's rows: the done page, the
        link's page when it expired (or its user was disabled) since the form was checked, or None
        when it is gone (used by a request that held the rows first)."""
        now = self._clock()
        async with self._repository.transaction() as transaction:
            found = await transaction.lock_reset_link(app_id, token_hash, user_id)
            if found is None:
                return None
            app, user, expires_at = found
            outcome = reset_outcome(link_of(app, user, expires_at), token, now)
            if outcome.page is not Page.PASSWORD_RESET:
                return outcome
            confirms = user.status is UserStatus.EMAIL_CONFIRMATION_PENDING
            events = [(await transaction.change_password(app, user, password_hash, now)).id]
            if confirms:
                await transaction.enable_pending_user(user, now)
                confirmed = user_event(USER_CONFIRMED, app, user)
                transaction.record(confirmed)
                events.append(confirmed.id)
        logger.info(
            "user %s of app %s set a new password through a reset link%s (events %s)",
            user.object_id,
            app.app_id,
            " and so confirmed their email address" if confirms else "",
            ", ".join(events),
        )
        PASSWORD_RESETS.labels("changed").inc()
        return show(Page.PASSWORD_RESET_DONE, link_of(app, user, None), just_confirmed=confirms)

    def _busy(self, form: Outcome, retry_after_seconds: int) -> Outcome:
        """The form again, 503: nothing changed, and the link still works; try again shortly."""
        PASSWORD_RESETS.labels(PasswordProblem.BUSY).inc()
        assert form.link is not None
        return show(
            Page.PASSWORD_RESET,
            form.link,
            form.token,
            status=503,
            password_problem=PasswordProblem.BUSY,
            retry_after_seconds=retry_after_seconds,
        )

    async def resend(self, app_id: str, token: str) -> Outcome:
        """Email a new reset link to the user of this (typically expired) link, with the cool-down
        of `restorepassword` (`shared.passwords.request_password_reset`)."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        async with self._repository.transaction() as transaction:
            found = await transaction.reset_link_rows(app_id, hash_token(token))
            if found is not None:
                app, user, expires_at = found
                link = link_of(app, user, expires_at)
                opened = reset_outcome(link, token, self._clock())
                if opened.page is Page.PASSWORD_RESET_FAILED:
                    return opened  # a DISABLED user gets no new link from here
                try:
                    event = await transaction.request_password_reset(app, user, self._public_url, self._cooldown)
                except ResendTooSoon as refused:
                    RESET_RESENDS.labels(Resend.TOO_SOON).inc()
                    return show(
                        Page.PASSWORD_RESET_EXPIRED,
                        link,
                        token,
                        status=429,
                        resend=Resend.TOO_SOON,
                        retry_after_seconds=refused.retry_after_seconds,
                    )
        if found is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        logger.info(
            "new password-reset link issued for user %s of app %s (event %s)", user.object_id, app.app_id, event.id
        )
        RESET_RESENDS.labels(Resend.SENT).inc()
        assert event.password_reset is not None
        return show(
            Page.PASSWORD_RESET_EXPIRED,
            link,
            status=200,
            resend=Resend.SENT,
            new_link_expires_at=event.password_reset.expires_at,
        )

    async def failed(self, app_id: str | None, failure: str, status: int | None = None) -> Outcome:
        """The reset's failed page, naming the app of the path when it exists."""
        app = None if app_id is None else await self._repository.find_app_name(app_id)
        return show_failure(failure, app, status, page=Page.PASSWORD_RESET_FAILED)
