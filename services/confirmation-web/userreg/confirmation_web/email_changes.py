"""What happens when an email-change link is opened and confirmed: the service of the email-change
pages, as `service.Confirmations` is of the confirmation pages. The link is emailed to the new
address after a signed-in user changed `email` in an app that confirms emails (registration's
`PUT /users/{objectId}`, `shared.email_changes`); until it is used the user keeps its old address.

Opening the link (GET or HEAD, a mail scanner's too) changes nothing: its page confirms with a POST
(sent by its script, with a button as fallback). The POST applies the change in one transaction
holding the user's row and the link's: the new address (and identity, when the address is the
identity) is written under the unique identity index, so of two users waiting for one address the
first to confirm gets it and the other's page says it is taken. The link is single use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from prometheus_client import Counter

from userreg.confirmation_web import email_change_queries as queries
from userreg.confirmation_web.model import Failure, Outcome
from userreg.confirmation_web.repository import Repository, link_of
from userreg.confirmation_web.rules.outcomes import show, show_failure
from userreg.shared.clock import utcnow
from userreg.shared.db.models import App, EmailChangeToken, User, UserStatus
from userreg.shared.email_changes import applied_values
from userreg.shared.templates import Page
from userreg.shared.tokens import hash_token, is_well_formed

logger = logging.getLogger(__name__)

EMAIL_CHANGES = Counter("userreg_email_changes_total", "Email-change links confirmed, by result", ["result"])
# The status of the failed page, by why it failed.
FAILURE_STATUS = {Failure.CROSS_SITE: 403, Failure.DISABLED: 403, Failure.EXPIRED: 410, Failure.TAKEN: 409}


class EmailChanges:
    """The two things a visitor can do with an email-change link: open it, confirm it."""

    def __init__(self, repository: Repository, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._repository = repository
        self._clock = clock

    async def open(self, app_id: str, token: str) -> Outcome:
        """GET/HEAD of the link: its pending page, or why it cannot be used. Changes nothing."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        async with self._repository.session() as session:
            rows = await queries.find(session, app_id, hash_token(token))
        if rows is None:
            return await self.failed(app_id, Failure.UNKNOWN)
        return self._usable(*rows, token) or self._failed_link(*rows)

    async def confirm(self, app_id: str, token: str) -> Outcome:
        """The pending page's POST: the address becomes the user's, or the page says why not."""
        if not is_well_formed(token):
            return await self.failed(app_id, Failure.MALFORMED)
        async with self._repository.session() as session:
            rows = await queries.find(session, app_id, hash_token(token), lock=True)
            if rows is None:
                return await self.failed(app_id, Failure.UNKNOWN)
            if self._usable(*rows, token) is None:
                return self._failed_link(*rows)
            app, user, change = rows
            values = applied_values(user, change, self._clock())
            written = await queries.apply(session, user.object_id, values)
        if not written:
            EMAIL_CHANGES.labels(Failure.TAKEN).inc()
            logger.info(
                "user %s of app %s confirmed an email address another user took meanwhile", user.object_id, app.app_id
            )
            return self._failure_of(app, Failure.TAKEN)
        EMAIL_CHANGES.labels("changed").inc()
        logger.info("user %s of app %s confirmed a new email address", user.object_id, app.app_id)
        link = replace(link_of(app, user, None), properties=values["properties"])
        return show(Page.EMAIL_CHANGE_DONE, link, new_email=change.email)

    def _usable(self, app: App, user: User, change: EmailChangeToken, token: str) -> Outcome | None:
        """The pending page, when the link may still be used; else None."""
        if user.status is UserStatus.DISABLED or change.expires_at <= self._clock():
            return None
        return show(Page.EMAIL_CHANGE_PENDING, link_of(app, user, change.expires_at), token, new_email=change.email)

    def _failed_link(self, app: App, user: User, change: EmailChangeToken) -> Outcome:
        """Why a link that exists cannot be used: its user is disabled (disabling stays in force), or it expired."""
        return self._failure_of(app, Failure.DISABLED if user.status is UserStatus.DISABLED else Failure.EXPIRED)

    @staticmethod
    def _failure_of(app: App, failure: str) -> Outcome:
        return show_failure(failure, (app.app_id, app.name), FAILURE_STATUS.get(failure), page=Page.EMAIL_CHANGE_FAILED)

    async def failed(self, app_id: str | None, failure: str, status: int | None = None) -> Outcome:
        """The failed page, naming the app of the path when it exists."""
        app = None if app_id is None else await self._repository.find_app_name(app_id)
        return show_failure(failure, app, status or FAILURE_STATUS.get(failure), page=Page.EMAIL_CHANGE_FAILED)
