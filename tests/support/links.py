"""Backdating a user's confirmation and password-reset links, so that tests need not wait for a
cool-down or a link's end."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from userreg.shared.confirmations import mailbox_of
from userreg.shared.db import ConfirmationToken, MailboxEmail, PasswordResetToken, User


async def age_links(sessions: async_sessionmaker, user_id: str, seconds: float, *, expire: bool = False) -> None:
    """The user's links, and the emails its mailbox was sent, look `seconds` older: the resend
    cool-downs (the user's and the mailbox's) pass; with `expire`, the links' lifetimes run out too."""
    await _age(sessions, ConfirmationToken, user_id, seconds, expire=expire)


async def age_reset_links(sessions: async_sessionmaker, user_id: str, seconds: float, *, expire: bool = False) -> None:
    """`age_links` for the user's password-reset links (docs/api.md, Sessions and password recovery)."""
    await _age(sessions, PasswordResetToken, user_id, seconds, expire=expire)


async def _age(
    sessions: async_sessionmaker,
    tokens: type[ConfirmationToken] | type[PasswordResetToken],
    user_id: str,
    seconds: float,
    *,
    expire: bool,
) -> None:
    shift = timedelta(seconds=seconds)
    values = {"created_at": tokens.created_at - shift}
    if expire:
        values["expires_at"] = tokens.expires_at - shift
    async with sessions() as session, session.begin():
        await session.execute(update(tokens).where(tokens.user_id == user_id).values(values))
        await _age_mailbox(session, user_id, shift)


async def _age_mailbox(session: AsyncSession, user_id: str, shift: timedelta) -> None:
    user = await session.scalar(select(User).where(User.object_id == user_id))
    mailbox = mailbox_of(user) if user is not None else None
    if mailbox is not None:
        await session.execute(
            update(MailboxEmail)
            .where(MailboxEmail.app_id == user.app_id, MailboxEmail.mailbox == mailbox)
            .values(sent_at=MailboxEmail.sent_at - shift)
        )
