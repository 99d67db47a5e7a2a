"""A signed-in user's new email address, in an app that confirms emails: kept aside until the link
emailed to it is opened (registration issues the link on an update; confirmation-web applies it).

The link is like a confirmation link: a random token stored only as its digest, built from
configuration, valid `confirmationLinkTtl`, issued under the mailbox limits of the address it goes
to (its cool-down and daily cap: a signed-in user must not be able to flood someone else's mailbox)
and emailed through the outbox (`user.email_change_requested`, carrying the new address). It is
single use, and a user has at most one: asking again replaces it. Applying it writes the address
(and the identity, when the address is the identity) under the unique identity index: of two users
waiting for one address, the first to open the link gets it, the other is told it is taken.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.clock import utcnow
from userreg.shared.confirmations import check_mailbox, event_user, mailbox_email
from userreg.shared.db.models import App, EmailChangeToken, User
from userreg.shared.events import USER_EMAIL_CHANGE_REQUESTED, Confirmation, Event
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.outbox import enqueue
from userreg.shared.tokens import hash_token, new_token

EMAIL = "email"


def email_change_url(public_base_url: str, app_id: str, token: str) -> str:
    """The link that confirms a new address; built from configuration, never from a request."""
    return f"{public_base_url}/{app_id}/change-email/{token}"


async def request_email_change(
    session: AsyncSession,
    app: App,
    user: User,
    email: str,
    identity_key: str | None,
    public_base_url: str,
    cooldown_seconds: int,
    now: datetime | None = None,
) -> Event:
    """Issue the link that makes `email` the user's address and put `user.email_change_requested`
    in the outbox; any earlier link of the user ends. `identity_key`: the user's identity key once
    the address is its, when the address is the identity (else None). Runs inside the caller's
    transaction, which holds the user's row. Raises `ResendTooSoon` within the new mailbox's
    cool-down or past its daily cap."""
    now = now or utcnow()
    mailbox = mailbox_key(email)
    await check_mailbox(session, app, mailbox, cooldown_seconds, now)
    session.add(mailbox_email(app, mailbox, now))
    await session.execute(delete(EmailChangeToken).where(EmailChangeToken.user_id == user.object_id))
    token = new_token()
    expires_at = now + timedelta(seconds=app.confirmation_link_ttl)
    session.add(
        EmailChangeToken(
            token_hash=hash_token(token),
            app_id=app.app_id,
            user_id=user.object_id,
            email=email,
            identity_key=identity_key,
            created_at=now,
            expires_at=expires_at,
        )
    )
    event = Event(
        type=USER_EMAIL_CHANGE_REQUESTED,
        app_id=app.app_id,
        user=event_user(app, user),
        confirmation=Confirmation(url=email_change_url(public_base_url, app.app_id, token), expires_at=expires_at),
        new_email=email,
    )
    enqueue(session, event)
    return event


def applied_values(user: User, change: EmailChangeToken, now: datetime) -> dict[str, Any]:
    """The user's columns once the change is applied (the caller writes them): its new address,
    and its new identity key when the address is the identity."""
    values: dict[str, Any] = {"properties": {**user.properties, EMAIL: change.email}, "updated_at": now}
    if change.identity_key is not None:
        values["identity_key"] = change.identity_key
    return values
