"""Confirmation links and the events about users, shared by registration and confirmation-web.

Registration issues a link when a user registers and when a client asks for a new one
(`resendconfirmation`); confirmation-web issues one from the expired page. Both go through
`request_new_confirmation`, so the rules and the cool-down are the same everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from userreg.shared.clock import utcnow
from userreg.shared.db.models import App, ConfirmationToken, MailboxEmail, User, UserStatus
from userreg.shared.events import USER_CONFIRMATION_REQUESTED, Confirmation, Event, EventType, EventUser
from userreg.shared.mailboxes import mailbox_key
from userreg.shared.outbox import enqueue
from userreg.shared.tokens import confirmation_url, hash_token, new_token

# Properties that never leave the database in an event (the hash is a column of its own anyway).
SECRET_PROPERTIES = frozenset({"password"})
MAILBOX_DAY = timedelta(days=1)


class ResendRefused(Exception):
    """A new confirmation link cannot be issued; subclasses say why."""


class ConfirmationNotRequired(ResendRefused):
    pass


class AlreadyConfirmed(ResendRefused):
    pass


class ResendTooSoon(ResendRefused):
    """Within the cool-down (of the user, or of its mailbox), or the mailbox had its daily number of
    emails; `reason` says which, for the client."""

    def __init__(
        self, retry_after_seconds: int, reason: str = "A new confirmation link was issued too recently"
    ) -> None:
        super().__init__(f"{reason}; retry in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds
        self.reason = reason


def mailbox_of(user: User) -> str | None:
    """The user's mailbox (`mailbox_key` form), None for a user without an email address."""
    email = user.properties.get("email")
    return mailbox_key(email) if isinstance(email, str) and email else None


def mailbox_email(app: App, mailbox: str, now: datetime) -> MailboxEmail:
    """The record of one confirmation or reset email to a mailbox, written with the link it carries."""
    return MailboxEmail(app_id=app.app_id, mailbox=mailbox, sent_at=now)


async def check_mailbox(
    connection: AsyncSession | AsyncConnection, app: App, mailbox: str, cooldown_seconds: int, now: datetime
) -> None:
    """`ResendTooSoon` when the mailbox got a confirmation or reset email of the app within the
    cool-down, or has had `mailboxDailyEmailLimit` of them in the last 24 hours (the README's Security section): many
    users (identities that are not the address) can share one mailbox, and it is the mailbox that
    gets the emails. Inside a transaction, concurrent callers for one mailbox are serialised."""
    await connection.execute(select(func.pg_advisory_xact_lock(func.hashtext(f"mailbox {app.app_id} {mailbox}"))))
    last, count, oldest = (
        await connection.execute(
            select(func.max(MailboxEmail.sent_at), func.count(), func.min(MailboxEmail.sent_at)).where(
                MailboxEmail.app_id == app.app_id,
                MailboxEmail.mailbox == mailbox,
                MailboxEmail.sent_at > now - MAILBOX_DAY,
            )
        )
    ).one()
    if last is not None and (wait := cooldown_seconds - (now - last).total_seconds()) > 0:
        raise ResendTooSoon(int(wait) + 1, "An email was sent to this address too recently")
    if count >= app.mailbox_daily_email_limit:
        wait = (oldest + MAILBOX_DAY - now).total_seconds()
        raise ResendTooSoon(
            int(wait) + 1, f"This address has had its {app.mailbox_daily_email_limit} emails of the day"
        )


def issue_confirmation(
    session: AsyncSession, app: App, user: User, public_confirmation_url: str, now: datetime | None = None
) -> Confirmation:
    """Add a new confirmation token for the user to the session and return its link and expiry.
    Only the token's hash is stored; the raw link exists in the returned value and the event."""
    row, confirmation = new_confirmation(app, user, public_confirmation_url, now)
    session.add(row)
    return confirmation


def new_confirmation(
    app: App, user: User, public_confirmation_url: str, now: datetime | None = None
) -> tuple[ConfirmationToken, Confirmation]:
    """A new token's row (its hash only) and its link, for a caller that writes the row itself."""
    now = now or utcnow()
    token = new_token()
    expires_at = now + timedelta(seconds=app.confirmation_link_ttl)
    row = ConfirmationToken(
        token_hash=hash_token(token), app_id=app.app_id, user_id=user.object_id, created_at=now, expires_at=expires_at
    )
    return row, Confirmation(url=confirmation_url(public_confirmation_url, app.app_id, token), expires_at=expires_at)


def event_user(app: App, user: User) -> EventUser:
    properties = {key: value for key, value in user.properties.items() if key not in SECRET_PROPERTIES}
    identity = properties.get(app.identity_property)
    return EventUser(
        object_id=user.object_id,
        identity_property=app.identity_property,
        identity=None if identity is None else str(identity),
        email=properties.get("email"),
        name=properties.get("name"),
        locale=properties.get("blUserLocale"),
        properties=properties,
    )


def user_event(event_type: EventType, app: App, user: User, confirmation: Confirmation | None = None) -> Event:
    return Event(type=event_type, app_id=app.app_id, user=event_user(app, user), confirmation=confirmation)


async def request_new_confirmation(
    session: AsyncSession, app: App, user: User, public_confirmation_url: str, cooldown_seconds: int
) -> Event:
    """Issue a new link for a pending user and put `user.confirmation_requested` in the outbox.

    Runs inside the caller's transaction. The user's row is locked so that concurrent requests
    are serialised and the cool-down (counted from the last link issued, the registration's one
    included) holds under concurrency; the user's mailbox has the same cool-down and its daily
    cap (`check_mailbox`). Earlier unexpired links keep working.
    """
    if not app.email_confirmation_required:
        raise ConfirmationNotRequired()
    await session.execute(select(User.object_id).where(User.object_id == user.object_id).with_for_update())
    await session.refresh(user)
    if user.status is not UserStatus.EMAIL_CONFIRMATION_PENDING:
        raise AlreadyConfirmed()
    now = utcnow()
    last_issued = await session.scalar(
        select(func.max(ConfirmationToken.created_at)).where(ConfirmationToken.user_id == user.object_id)
    )
    if last_issued is not None:
        wait = cooldown_seconds - (now - last_issued).total_seconds()
        if wait > 0:
            raise ResendTooSoon(int(wait) + 1)
    mailbox = mailbox_of(user)
    if mailbox is not None:
        await check_mailbox(session, app, mailbox, cooldown_seconds, now)
        session.add(mailbox_email(app, mailbox, now))
    event = user_event(
        USER_CONFIRMATION_REQUESTED, app, user, issue_confirmation(session, app, user, public_confirmation_url, now)
    )
    enqueue(session, event)
    return event
