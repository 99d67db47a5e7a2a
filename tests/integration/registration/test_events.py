"""What registration publishes, observed on a queue bound to the real exchange: the
`user.registered` event of docs/api.md, Events (no secrets but the link), one per user, delivered even when
RabbitMQ was unreachable while the user registered."""

from __future__ import annotations

import asyncio
import gc
import json
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.integration.registration.client import Api
from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy
from userreg.shared.db import ConfirmationToken, MailboxEmail, OutboxEvent, User
from userreg.shared.tokens import hash_token


async def _events_of(queue, object_id: str, *, timeout: float = 15.0, count: int = 1) -> list:
    """The first `count` messages about this user (others on the shared exchange are skipped)."""
    found: list = []

    async def collect():
        while (message := await queue.get(fail=False, no_ack=True)) is not None:
            if json.loads(message.body)["user"]["objectId"] == object_id:
                found.append(message)
        return len(found) >= count

    await eventually(collect, timeout=timeout, interval=0.02, what=f"{count} event(s) of user {object_id}")
    return found


async def test_a_registration_publishes_user_registered(api_for, unique_email, event_queue, sessions):
    api = await api_for(welcome_email_enabled=True)
    email = unique_email()
    status, user = await api.register({"email": email, "password": "hunter2-secret", "name": "Ann", "age": 30})
    assert status == 200

    [message] = await _events_of(event_queue, user["objectId"])
    event = json.loads(message.body)
    assert message.type == "user.registered" and message.routing_key == "user.registered"
    assert message.content_type == "application/json"
    assert message.delivery_mode == 2
    assert message.message_id == event["id"]
    assert event["type"] == "user.registered" and event["version"] == 1
    assert event["appId"] == api.app.app_id
    assert event["occurredAt"].endswith(("Z", "+00:00"))
    assert event["user"] == {
        "objectId": user["objectId"],
        "identityProperty": "email",
        "identity": email,
        "email": email,
        "name": "Ann",
        "locale": "en",
        "properties": {"email": email, "name": "Ann", "age": 30, "blUserLocale": "en"},
    }
    assert event["confirmation"] is None
    stored = await _stored(sessions, user["objectId"])
    assert "hunter2-secret" not in message.body.decode()
    assert stored.password_hash not in message.body.decode()
    async with sessions() as session:  # the relay deleted the row once RabbitMQ confirmed it
        assert (
            await session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.event_id == event["id"])
            )
            == 0
        )


async def test_with_confirmation_the_event_carries_the_link_and_nothing_else_secret(
    api_for, unique_email, event_queue, sessions, settings
):
    api = await api_for(email_confirmation_required=True, confirmation_link_ttl=7200)
    status, user = await api.register({"email": unique_email(), "password": "hunter2-secret"})
    assert status == 200

    [message] = await _events_of(event_queue, user["objectId"])
    event = json.loads(message.body)
    link = event["confirmation"]["url"]
    base, app_id, confirm, token = link.rsplit("/", 3)
    assert base == settings.public_confirmation_url and app_id == api.app.app_id and confirm == "confirm"
    assert urlsplit(link).netloc == urlsplit(settings.public_confirmation_url).netloc  # never a Host header
    async with sessions() as session:
        stored = await session.get(ConfirmationToken, hash_token(token))
    assert stored is not None and stored.user_id == user["objectId"]
    body = message.body.decode()
    assert body.count(token) == 1  # only inside confirmation.url
    assert "hunter2-secret" not in body and "argon2" not in body
    assert event["confirmation"]["expiresAt"]


async def test_losers_of_a_duplicate_race_publish_nothing(api_for, unique_email, event_queue):
    api = await api_for()
    email = unique_email()
    results = await asyncio.gather(*(api.register({"email": email, "password": "pw"}) for _ in range(10)))
    [winner] = [body for status, body in results if status == 200]
    await _events_of(event_queue, winner["objectId"])
    await asyncio.sleep(0.5)  # any other event would have followed the winner's by now
    others = []
    while (message := await event_queue.get(fail=False, no_ack=True)) is not None:
        if json.loads(message.body)["user"]["identity"] == email:
            others.append(message)
    assert others == []


async def test_a_guest_conversion_publishes_user_registered(api_for, unique_email, event_queue):
    api = await api_for()
    _, guest = await api.guest()
    status, _ = await api.register({"email": unique_email(), "password": "pw", "objectId": guest["objectId"]})
    assert status == 200
    [message] = await _events_of(event_queue, guest["objectId"])
    assert message.type == "user.registered"


async def test_a_guest_converted_in_an_app_that_confirms_emails_gets_its_link(
    api_for, unique_email, event_queue, sessions
):
    """The conversion writes what a new registration writes (one write path): the token, the
    mailbox's record and the event carrying the link, on the guest's own row."""
    api = await api_for(email_confirmation_required=True)
    _, guest = await api.guest()
    email = unique_email()
    status, user = await api.register({"email": email, "password": "pw", "objectId": guest["objectId"]})
    assert status == 200
    assert user["objectId"] == guest["objectId"] and user["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    [message] = await _events_of(event_queue, guest["objectId"])
    event = json.loads(message.body)
    assert message.type == "user.registered" and event["user"]["email"] == email
    token = event["confirmation"]["url"].rsplit("/", 1)[-1]
    async with sessions() as session:
        stored = await session.get(ConfirmationToken, hash_token(token))
        mailbox_records = await session.scalar(
            select(func.count()).select_from(MailboxEmail).where(MailboxEmail.app_id == api.app.app_id)
        )
    assert stored is not None and stored.user_id == guest["objectId"]
    assert mailbox_records == 1
    assert (await _stored(sessions, guest["objectId"])).status.value == "EMAIL_CONFIRMATION_PENDING"


# aiormq does not close the StreamWriter of a connection the broker dropped (here: the cut); the
# garbage collector does, with a ResourceWarning. Collected inside this test, it is ignored here only.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_registration_works_while_rabbitmq_is_unreachable_and_the_event_follows(
    start_service, make_app, unique_email, event_queue, sessions, settings
):
    broker = urlsplit(settings.amqp_dsn)
    async with TcpProxy(broker.hostname, broker.port or 5672) as proxy:
        proxied = settings.amqp_dsn.replace(broker.netloc.rsplit("@", 1)[-1], f"127.0.0.1:{proxy.port}")
        client = await start_service(amqp_url=proxied, outbox_poll_seconds=0.2)
        api = Api(client, await make_app())

        # The relay is connected through the proxy: a first event goes through.
        _, first = await api.register({"email": unique_email(), "password": "pw"})
        await _events_of(event_queue, first["objectId"])

        await proxy.cut()
        status, user = await api.register({"email": unique_email(), "password": "pw"})
        assert status == 200
        await asyncio.sleep(1.0)  # give the relay time to try (and fail) to publish
        async with sessions() as session:
            waiting = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.payload["user"]["objectId"].astext == user["objectId"])
            )
        assert waiting == 1, "the event must wait in the outbox while RabbitMQ is away"

        await proxy.restore()
        [message] = await _events_of(event_queue, user["objectId"], timeout=60)
        assert message.type == "user.registered"
    gc.collect()


async def _stored(sessions, object_id: str) -> User:
    async with sessions() as session:
        return await session.get(User, object_id)
