"""What happens when a link is opened, confirmed or renewed: each handler takes plain values from the
view, does its database work in one explicit transaction, and returns an `Outcome` that says
which page to show. Nothing here knows about HTTP beyond the status a page is served with."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.confirmation_web import repository
from userreg.confirmation_web.rules import HTTP_STATUS, Link, Page, confirms_on_open, page_for
from userreg.shared.clock import utcnow
from userreg.shared.confirmations import (
    AlreadyConfirmed,
    ConfirmationNotRequired,
    ResendTooSoon,
    request_new_confirmation,
    user_event,
)
from userreg.shared.db.models import App, UserStatus
from userreg.shared.events import USER_CONFIRMED
from userreg.shared.outbox import enqueue
from userreg.shared.tokens import hash_token, is_well_formed

logger = logging.getLogger(__name__)

CONFIRMATIONS = Counter("userreg_confirmations_total", "Users whose email address was confirmed")
RESENDS = Counter("userreg_confirmation_resends_total", "New links asked for on the expired page", ["result"])


class Resend:
    """How asking for a new link on the expired page went."""

    SENT = "sent"
    TOO_SOON = "too_soon"
    UNAVAILABLE = "unavailable"  # the app no longer requires confirmation, so it sends no links


class Failure:
    """Why a link shows the failed page (a template may word them differently)."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    CROSS_SITE = "cross_site"


@dataclass(frozen=True)
class Outcome:
    """The page to show and everything it needs to say."""

    page: Page
    status: int
    link: Link | None = None
    # The app named in the path, when the link itself is not found (for the failed page).
    app_id: str | None = None
    app_name: str | None = None
    # Only pages with a form (pending, expired) carry the token back to the browser.
    token: str | None = None
    just_confirmed: bool = False
    resend: str | None = None
    retry_after_seconds: int | None = None
    new_link_expires_at: datetime | None = None
    failure: str | None = None


def show(page: Page, link: Link, token: str | None = None, *, status: int | None = None,
         just_confirmed: bool = False, resend: str | None = None, retry_after_seconds: int | None = None,
         new_link_expires_at: datetime | None = None) -> Outcome:
    """The outcome that shows a link's page; the token goes back only to pages with a form."""
    return Outcome(
        page=page, status=status or HTTP_STATUS[page], link=link,
        token=token if page in (Page.PENDING, Page.EXPIRED) else None,
        just_confirmed=just_confirmed, resend=resend, retry_after_seconds=retry_after_seconds,
        new_link_expires_at=new_link_expires_at,
    )


class Confirmations:
    """The three things a visitor can do with a link: open it, confirm it, ask for a new one."""

    def __init__(self, sessions: async_sessionmaker, reads: asyncpg.Pool, public_confirmation_url: str,
                 resend_cooldown_seconds: int) -> None:
        self._sessions = sessions
        self._reads = reads
        self._public_url = public_confirmation_url
        self._cooldown = resend_cooldown_seconds

    @property
    def reads(self) -> asyncpg.Pool:
        return self._reads

    async def open(self, app_id: str, token: str, method: str, headers: Mapping[str, str]) -> Outcome:
        """GET/HEAD of a link: show its page. Confirms only when the app allows confirming on GET."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        now = utcnow()
        link = await repository.find_link(self._reads, app_id, hash_token(token))
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
        now = utcnow()
        async with self._sessions() as session, session.begin():
            user = await repository.confirm_user(session, app_id, token_hash, now)
            if user is not None:
                app = await session.get(App, user.app_id)
                assert app is not None  # the user row references it
                event = user_event(USER_CONFIRMED, app, user)
                enqueue(session, event)
        if user is not None:
            logger.info("user %s of app %s confirmed their email address (event %s)",
                        user.object_id, app.app_id, event.id)
            CONFIRMATIONS.inc()
            return show(Page.CONFIRMED, repository.link_of(app, user, None), just_confirmed=True)
        # Nothing changed: a concurrent request confirmed first, or the link is not (or no longer)
        # a valid pending one. The link's current page says which.
        link = await repository.find_link(self._reads, app_id, token_hash)
        if link is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        return show(page_for(link, now), link, token)

    async def resend(self, app_id: str, token: str) -> Outcome:
        """Issue a new link to the user of this (typically expired) link and publish
        `user.confirmation_requested`, with the same cool-down as the REST API."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        token_hash = hash_token(token)
        async with self._sessions() as session, session.begin():
            found = await repository.load_for_resend(session, app_id, token_hash)
            if found is None:
                return await self.failed(app_id, Failure.UNKNOWN)
            app, user, expires_at = found
            now = utcnow()
            if user.status is UserStatus.DISABLED:
                return show(Page.DISABLED, repository.link_of(app, user, expires_at))
            try:
                event = await request_new_confirmation(session, app, user, self._public_url, self._cooldown)
            except AlreadyConfirmed:
                # request_new_confirmation re-read the user under a row lock: show what it found.
                RESENDS.labels("not_pending").inc()
                link = repository.link_of(app, user, expires_at)
                return show(page_for(link, now), link)
            except ResendTooSoon as refused:
                RESENDS.labels(Resend.TOO_SOON).inc()
                return show(Page.EXPIRED, repository.link_of(app, user, expires_at), token, status=429,
                            resend=Resend.TOO_SOON, retry_after_seconds=refused.retry_after_seconds)
            except ConfirmationNotRequired:
                RESENDS.labels(Resend.UNAVAILABLE).inc()
                return show(Page.EXPIRED, repository.link_of(app, user, expires_at), token,
                            resend=Resend.UNAVAILABLE)
        logger.info("new confirmation link issued for user %s of app %s (event %s)",
                    user.object_id, app.app_id, event.id)
        RESENDS.labels(Resend.SENT).inc()
        assert event.confirmation is not None
        return show(Page.EXPIRED, repository.link_of(app, user, expires_at), status=200, resend=Resend.SENT,
                    new_link_expires_at=event.confirmation.expires_at)

    async def failed(self, app_id: str | None, failure: str, status: int | None = None) -> Outcome:
        """The failed page, naming the app of the path when it exists."""
        app = None if app_id is None else await repository.find_app_name(self._reads, app_id)
        return Outcome(page=Page.FAILED, status=status or HTTP_STATUS[Page.FAILED], failure=failure,
                       app_id=app[0] if app else None, app_name=app[1] if app else None)
