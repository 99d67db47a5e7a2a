"""The service layer as the admin command uses it (`open_registrar`): an operator's user goes through
the same rules and the same transaction as a self-registered one, without an API key."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.support.polling import eventually
from userreg.registration import errors
from userreg.registration.app import open_registrar
from userreg.registration.representation import user_json
from userreg.shared.db import ConfirmationToken, OutboxEvent, User, UserStatus


@pytest.fixture
async def registrar(settings, engine):
    async with open_registrar(settings, engine, hash_workers=1) as registrar:
        yield registrar


async def test_an_operator_creates_a_user_with_the_confirmation_event(registrar, make_app, sessions, unique_email):
    app = await make_app(email_confirmation_required=True, registration_enabled=False)
    tenant = await registrar.load_tenant(app.app_id)
    email = unique_email()
    user = user_json(await registrar.create_user(tenant, {"email": email, "password": "pw", "name": "Op"}, locale="de"))

    assert user["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    assert user["blUserLocale"] == "de" and "password" not in user
    async with sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(ConfirmationToken).where(ConfirmationToken.user_id == user["objectId"])
            )
            == 1
        )

    # The event is in the outbox (a running service's relay publishes it), carrying the link.
    async def outboxed():
        async with sessions() as session:
            return await session.scalar(
                select(OutboxEvent).where(OutboxEvent.payload["user"]["objectId"].astext == user["objectId"])
            )

    row = await eventually(outboxed, timeout=5, what="the outbox row")
    assert row.routing_key == "user.registered"
    assert row.payload["confirmation"]["url"].startswith("http://confirm.test.invalid/")
    assert "pw" not in json.dumps(row.payload["user"]["properties"])


async def test_an_operators_user_passes_the_same_checks(registrar, make_app, unique_email):
    app = await make_app()
    tenant = await registrar.load_tenant(app.app_id)
    with pytest.raises(errors.MissingPassword):
        await registrar.create_user(tenant, {"email": unique_email()})
    with pytest.raises(errors.InvalidEmail):
        await registrar.create_user(tenant, {"email": "nope", "password": "pw"})
    email = unique_email()
    await registrar.create_user(tenant, {"email": email, "password": "pw"})
    with pytest.raises(errors.IdentityTaken):
        await registrar.create_user(tenant, [("email", email.upper()), ("password", "pw")])


async def test_an_unknown_app_is_2002(registrar):
    with pytest.raises(errors.InvalidApplication):
        await registrar.load_tenant("0A1B2C3D-0000-4000-8000-00000000ABCD")
    with pytest.raises(errors.InvalidApplication):
        await registrar.load_tenant("no such app")


async def test_an_operator_changes_a_status_and_finds_a_user(registrar, make_app, sessions, unique_email):
    app = await make_app()
    tenant = await registrar.load_tenant(app.app_id)
    email = unique_email()
    user = user_json(await registrar.create_user(tenant, {"email": email, "password": "pw"}))
    assert await registrar.set_status(tenant, user["objectId"], UserStatus.DISABLED) is True
    assert await registrar.set_status(tenant, user["objectId"], UserStatus.DISABLED) is False
    async with sessions() as session:
        assert (await session.get(User, user["objectId"])).status is UserStatus.DISABLED
    found = user_json(await registrar.find_user(tenant, email.upper()))
    assert found["objectId"] == user["objectId"] and found["userStatus"] == "DISABLED"
    with pytest.raises(errors.UserNotFound):
        await registrar.set_status(tenant, "0A1B2C3D-0000-4000-8000-00000000ABCD", UserStatus.ENABLED)
    with pytest.raises(errors.IdentityNotFound):
        await registrar.find_user(tenant, unique_email())
