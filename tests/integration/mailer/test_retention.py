"""Retention: old records of sent emails and replayed dead letters, day-old mailbox records,
guests past their app's guestTtl, sessions unused past their app's sessionTtl and expired
password-reset links go, nothing else does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from userreg.mailer.repository import prune
from userreg.shared.db import MailboxEmail, PasswordResetToken, SessionToken, User, UserStatus
from userreg.shared.db.mail import DeadLetter, DeliveryStatus, MailDelivery
from userreg.shared.tokens import hash_token, new_guid, new_token

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=3)


async def test_prune_deletes_only_old_sent_records_and_old_replayed_dead_letters(engine, sessions, make_app):
    app = await make_app()
    deliveries = {
        "old sent": {"status": DeliveryStatus.SENT, "sent_at": OLD},
        "recent sent": {"status": DeliveryStatus.SENT, "sent_at": RECENT},
        "old failed": {"status": DeliveryStatus.FAILED, "created_at": OLD},
        "old claim": {"status": DeliveryStatus.SENDING, "created_at": OLD, "claimed_until": OLD},
    }
    dead_letters = {
        "old replayed": {"dead_lettered_at": OLD, "replayed_at": OLD},
        "recent replayed": {"dead_lettered_at": OLD, "replayed_at": RECENT},
        "old waiting": {"dead_lettered_at": OLD, "replayed_at": None},
    }
    ids = {name: str(uuid.uuid4()) for name in [*deliveries, *dead_letters]}
    async with sessions() as session, session.begin():
        for name, columns in deliveries.items():
            session.add(
                MailDelivery(event_id=ids[name], template="confirmation", app_id=app.app_id, attempts=1, **columns)
            )
        for name, columns in dead_letters.items():
            session.add(DeadLetter(event_id=ids[name], app_id=app.app_id, reason="550", payload={}, **columns))

    pruned = await prune(engine, retention_days=30)

    assert pruned.deliveries >= 1 and pruned.dead_letters >= 1  # other tests' rows are all recent
    async with sessions() as session:
        kept_deliveries = set(
            await session.scalars(select(MailDelivery.event_id).where(MailDelivery.app_id == app.app_id))
        )
        kept_dead_letters = set(
            await session.scalars(select(DeadLetter.event_id).where(DeadLetter.app_id == app.app_id))
        )
    assert kept_deliveries == {ids["recent sent"], ids["old failed"], ids["old claim"]}
    assert kept_dead_letters == {ids["recent replayed"], ids["old waiting"]}


async def test_prune_removes_guests_older_than_their_apps_guest_ttl_and_day_old_mailbox_records(
    engine, sessions, make_app
):
    short, long = await make_app(guest_ttl=3600), await make_app()
    users = {
        "old guest": (short, UserStatus.GUEST, NOW - timedelta(hours=2)),
        "young guest": (short, UserStatus.GUEST, NOW - timedelta(minutes=30)),
        "old user": (short, UserStatus.ENABLED, OLD),
        "guest of an app that keeps them 30 days": (long, UserStatus.GUEST, RECENT),
    }
    ids = {name: new_guid() for name in users}
    async with sessions() as session, session.begin():
        for name, (app, status, created) in users.items():
            session.add(
                User(
                    object_id=ids[name],
                    app_id=app.app_id,
                    status=status,
                    created_at=created,
                    properties={},
                    identity_key=None if status is UserStatus.GUEST else ids[name],
                )
            )
        session.add_all(
            [
                MailboxEmail(app_id=short.app_id, mailbox="a@example.com", sent_at=NOW - timedelta(days=2)),
                MailboxEmail(app_id=short.app_id, mailbox="b@example.com", sent_at=NOW),
            ]
        )
        await session.flush()
        session.add(SessionToken(token_hash=hash_token(new_token()), app_id=short.app_id, user_id=ids["old guest"]))

    pruned = await prune(engine, retention_days=30)

    assert pruned.guests >= 1 and pruned.mailbox_emails >= 1
    async with sessions() as session:
        kept = set(await session.scalars(select(User.object_id).where(User.object_id.in_(ids.values()))))
        mailboxes = set(await session.scalars(select(MailboxEmail.mailbox).where(MailboxEmail.app_id == short.app_id)))
    assert kept == {ids[name] for name in users} - {ids["old guest"]}
    assert mailboxes == {"b@example.com"}


async def test_prune_removes_sessions_unused_past_their_apps_session_ttl_and_expired_reset_links(
    engine, sessions, make_app
):
    short, long = await make_app(session_ttl=3600), await make_app()  # an hour; the default 30 days
    user_ids = {app.app_id: new_guid() for app in (short, long)}
    session_rows = {
        "idle past an hour": (short, NOW - timedelta(hours=2)),
        "used recently": (short, NOW - timedelta(minutes=30)),
        "idle for days, app keeps 30": (long, RECENT),
        "idle past 30 days": (long, OLD),
    }
    reset_rows = {
        "expired": (short, NOW - timedelta(minutes=1)),
        "valid": (short, NOW + timedelta(minutes=30)),
        "long expired": (long, OLD),
    }
    hashes = {name: hash_token(new_token()) for name in [*session_rows, *reset_rows]}
    async with sessions() as session, session.begin():
        for app in (short, long):
            session.add(
                User(
                    object_id=user_ids[app.app_id],
                    app_id=app.app_id,
                    status=UserStatus.ENABLED,
                    properties={},
                    identity_key=user_ids[app.app_id],
                )
            )
        await session.flush()
        for name, (app, last_used) in session_rows.items():
            session.add(
                SessionToken(
                    token_hash=hashes[name],
                    app_id=app.app_id,
                    user_id=user_ids[app.app_id],
                    created_at=OLD,
                    last_used_at=last_used,
                )
            )
        for name, (app, expires) in reset_rows.items():
            session.add(
                PasswordResetToken(
                    token_hash=hashes[name],
                    app_id=app.app_id,
                    user_id=user_ids[app.app_id],
                    created_at=expires - timedelta(hours=1),
                    expires_at=expires,
                )
            )

    pruned = await prune(engine, retention_days=30)

    assert pruned.sessions >= 2 and pruned.password_resets >= 2  # other tests' rows may go too
    async with sessions() as session:
        kept_sessions = set(
            await session.scalars(select(SessionToken.token_hash).where(SessionToken.user_id.in_(user_ids.values())))
        )
        kept_resets = set(
            await session.scalars(
                select(PasswordResetToken.token_hash).where(PasswordResetToken.user_id.in_(user_ids.values()))
            )
        )
        users = set(await session.scalars(select(User.object_id).where(User.object_id.in_(user_ids.values()))))
    assert kept_sessions == {hashes["used recently"], hashes["idle for days, app keeps 30"]}
    assert kept_resets == {hashes["valid"]}
    assert users == set(user_ids.values())  # the users stay, only their ended sessions and links go
