"""What happens when a link is opened, confirmed or renewed: each action takes plain values from the
view, has the repository do its database work (the writes in one explicit transaction), and
returns an `Outcome` that says which page to show. Nothing here knows about HTTP beyond the
status a page is served with, and nothing here is SQL."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from prometheus_client import Counter

from userreg.confirmation_web.model import Failure, Outcome, Resend
from userreg.confirmation_web.repository import Repository, link_of
from userreg.confirmation_web.rules.links import confirms_on_open, page_for
from userreg.confirmation_web.rules.outcomes import show, show_failure
from userreg.shared.clock import utcnow
from userreg.shared.confirmations import (
    AlreadyConfirmed,
    ConfirmationNotRequired,
    ResendTooSoon,
    user_event,
)
from userreg.shared.db.models import UserStatus
from userreg.shared.events import USER_CONFIRMED
from userreg.shared.templates import Page
from userreg.shared.tokens import hash_token, is_well_formed

logger = logging.getLogger(__name__)

CONFIRMATIONS = Counter("userreg_confirmations_total", "Users whose email address was confirmed")
RESENDS = Counter("userreg_confirmation_resends_total", "New links asked for on the expired page", ["result"])


class Confirmations:
    """The three things a visitor can do with a link: open it, confirm it, ask for a new one."""

    def __init__(
        self,
        repository: Repository,
        public_confirmation_url: str,
        resend_cooldown_seconds: int,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._repository = repository
        self._public_url = public_confirmation_url
        self._cooldown = resend_cooldown_seconds
        self._clock = clock

    async def open(self, app_id: str, token: str, method: str, headers: Mapping[str, str]) -> Outcome:
        """GET/HEAD of a link: show its page. Confirms only when the app allows confirming on GET."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        now = self._clock()
        link = await self._repository.find_link(app_id, hash_token(token))
        if link is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        page = page_for(link, now)
        if confirms_on_open(page, link, method, headers):
            return await self.confirm(app_id, token)
        return show(page, link, token)

    async def confirm(self, app_id: str, token: str) -> Outcome:
        """Confirm the link's user, once however many requests race; then show the link's page."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        token_hash = hash_token(token)
        now = self._clock()
        async with self._repository.transaction() as transaction:
            user = await transaction.confirm_user(app_id, token_hash, now)
            if user is not None:
                app = await transaction.app_of(user)
                event = user_event(USER_CONFIRMED, app, user)
                transaction.record(event)
        if user is not None:
            logger.info(
                "user %s of app %s confirmed their email address (event %s)", user.object_id, app.app_id, event.id
            )
            CONFIRMATIONS.inc()
            return show(Page.CONFIRMED, link_of(app, user, None), just_confirmed=True)
        # Nothing changed: a concurrent request confirmed first, or the link is not (or no longer)
        # a valid pending one. The link's current page says which.
        link = await self._repository.find_link(app_id, token_hash)
        if link is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        return show(page_for(link, now), link, token)

    async def resend(self, app_id: str, token: str) -> Outcome:
        """Issue a new link to the user of this (typically expired) link and publish
        `user.confirmation_requested`, with the same cool-down as the REST API."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        token_hash = hash_token(token)
        async with self._repository.transaction() as transaction:
            found = await transaction.load_for_resend(app_id, token_hash)
            if found is None:
                return await self.failed(app_id, Failure.UNKNOWN)
            app, user, expires_at = found
            now = self._clock()
            if user.status is UserStatus.DISABLED:
                return show(Page.DISABLED, link_of(app, user, expires_at))
            try:
                event = await transaction.request_new_confirmation(app, user, self._public_url, self._cooldown)
            except AlreadyConfirmed:
                # request_new_confirmation re-read the user under a row lock: show what it found.
                RESENDS.labels("not_pending").inc()
                link = link_of(app, user, expires_at)
                return show(page_for(link, now), link)
            except ResendTooSoon as refused:
                RESENDS.labels(Resend.TOO_SOON).inc()
                return show(
                    Page.EXPIRED,
                    link_of(app, user, expires_at),
                    token,
                    status=429,
                    resend=Resend.TOO_SOON,
                    retry_after_seconds=refused.retry_after_seconds,
                )
            except ConfirmationNotRequired:
                RESENDS.labels(Resend.UNAVAILABLE).inc()
                return show(Page.EXPIRED, link_of(app, user, expires_at), token, resend=Resend.UNAVAILABLE)
        logger.info(
            "new confirmation link issued for user %s of app %s (event %s)", user.object_id, app.app_id, event.id
        )
        RESENDS.labels(Resend.SENT).inc()
        assert event.confirmation is not None
        return show(
            Page.EXPIRED,
            link_of(app, user, expires_at),
            status=200,
            resend=Resend.SENT,
            new_link_expires_at=event.confirmation.expires_at,
        )

    async def failed(self, app_id: str | None, failure: str, status: int | None = None) -> Outcome:
        """The failed page, naming the app of the path when it exists."""
        app = None if app_id is None else await self._repository.find_app_name(app_id)
        return show_failure(failure, app, status)
