"""Password-reset links and password changes (docs/api.md, Sessions and password recovery), shared by
registration (`restorepassword`) and confirmation-web (the reset pages, and a new link from the expired page).

A reset link is like a confirmation link: a random token stored only as its digest, built from
configuration (never from a request's Host), issued under the same cool-down (per user, and per
mailbox with its daily cap) and emailed through the outbox. Unlike one, it is single use, and using
it ends every session and every other reset link of the user (`change_password`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.clock import utcnow
from userreg.shared.confirmations import ResendTooSoon, check_mailbox, event_user, mailbox_email, mailbox_of
from userreg.shared.db.models import App, PasswordResetToken, SessionToken, User
from userreg.shared.events import USER_PASSWORD_CHANGED, USER_PASSWORD_RESET_REQUESTED, Confirmation, Event
from userreg.shared.outbox import enqueue
from userreg.shared.tokens import hash_token, new_token, password_reset_url


def new_password_reset(
    app: App, user: User, public_base_url: str, now: datetime | None = None
) -> tuple[PasswordResetToken, Confirmation]:
    """A new reset token's row (its digest only) and its link, valid `passwordResetLinkTtl`."""
    now = now or utcnow()
    token = new_token()
    expires_at = now + timedelta(seconds=app.password_reset_link_ttl)
    row = PasswordResetToken(
        token_hash=hash_token(token), app_id=app.app_id, user_id=user.object_id, created_at=now, expires_at=expires_at
    )
    return row, Confirmation(url=password_reset_url(public_base_url, app.app_id, token), expires_at=expires_at)


async def request_password_reset(
    session: AsyncSession, app: App, user: User, public_base_url: str, cooldown_seconds: int
) -> Event:
    """Issue a reset link for the user and put `user.password_reset_requested` in the outbox.

    Runs inside the caller's transaction, holding the user's row, so that the cool-down (counted
    from the last reset link issued to the user) holds under concurrency; the user's mailbox has the
    same cool-down and its daily cap. Raises `ResendTooSoon` within either. Earlier unexpired reset
    links keep working until one of them is used.
    """
    await session.execute(select(User.object_id).where(User.object_id == user.object_id).with_for_update())
    now = utcnow()
    last_issued = await session.scalar(
        select(func.max(PasswordResetToken.created_at)).where(PasswordResetToken.user_id == user.object_id)
    )
    if last_issued is not None:
        wait = cooldown_seconds - (now - last_issued).total_seconds()
        if wait > 0:
            raise ResendTooSoon(int(wait) + 1, "A password-reset link was issued too recently")
    mailbox = mailbox_of(user)
    if mailbox is not None:
        await check_mailbox(session, app, mailbox, cooldown_seconds, now)
        session.add(mailbox_email(app, mailbox, now))
    row, link = new_password_reset(app, user, public_base_url, now)
    session.add(row)
    event = Event(
        type=USER_PASSWORD_RESET_REQUESTED, app_id=app.app_id, user=event_user(app, user), password_reset=link
    )
    enqueue(session, event)
    return event


async def change_password(
    session: AsyncSession,
    app: App,
    user: User,
    password_hash: str,
    now: datetime | None = None,
    *,
    keep_session: bytes | None = None,
) -> Event:
    """Store the user's new password hash, end every session (but the one whose token digest is
    `keep_session`: the signed-in user who changed it) and every reset link of the user, and put
    `user.password_changed` in the outbox (the mailer sends the "your password was changed"
    notice). Runs inside the caller's transaction; the caller holds the user's row."""
    now = now or utcnow()
    await session.execute(
        update(User).where(User.object_id == user.object_id).values(password_hash=password_hash, updated_at=now)
    )
    ended = delete(SessionToken).where(SessionToken.user_id == user.object_id)
    if keep_session is not None:
        ended = ended.where(SessionToken.token_hash != keep_session)
    await session.execute(ended)
    await session.execute(delete(PasswordResetToken).where(PasswordResetToken.user_id == user.object_id))
    event = Event(type=USER_PASSWORD_CHANGED, app_id=app.app_id, user=event_user(app, user))
    enqueue(session, event)
    return event
