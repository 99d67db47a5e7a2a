"""The end-to-end flows with every service's database connections going through PgBouncer in
transaction pooling mode, on a server pool smaller than the clients (so transactions of different
clients share server connections): registering, confirming by link, logging in, sessions, password
recovery, a settings change applying to the next request, concurrent signups, and the `userreg`
command (migrations included)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.e2e.pages import Page, open_page, submit
from tests.support.api import NEW_PASSWORD, PASSWORD
from tests.support.system import unique_address
from userreg.shared.db import App, UserStatus

pytestmark = pytest.mark.xdist_group("pooler")


async def test_register_confirm_log_in_and_log_out(system, api, http, make_app, user_status):
    app = await make_app("Pooled", email_confirmation_required=True)
    address = unique_address("pooled")
    registered = await api.register(app, {"email": address, "password": PASSWORD})
    assert registered.status == 200, registered
    [email] = await system.wait_for_emails(address)
    pending = await open_page(http, system.link_in(email))
    assert pending.name == "confirmation-pending"
    assert (await submit(http, pending)).name == "confirmation-confirmed"
    assert await user_status(registered.body["objectId"]) is UserStatus.ENABLED

    logged_in = await api.login(app, address, PASSWORD)
    assert logged_in.status == 200, logged_in
    token = logged_in.body["user-token"]
    assert (await api.is_valid_user_token(app, token)).body is True
    assert (await api.logout(app, token)).status == 200
    assert (await api.is_valid_user_token(app, token)).body is False


async def test_password_recovery(system, api, http, make_app):
    app = await make_app("Pooled recovery")
    address = unique_address("recover")
    assert (await api.register(app, {"email": address, "password": PASSWORD})).status == 200
    assert (await api.restore_password(app, address)).status == 200
    [email] = await system.wait_for_emails(address)
    form = await open_page(http, system.reset_link_in(email))
    assert form.name == "password-reset"
    done = await _post_new_password(http, form, NEW_PASSWORD)
    assert done.name == "password-reset-done", done.html[:500]
    assert (await api.login(app, address, NEW_PASSWORD)).status == 200
    assert (await api.login(app, address, PASSWORD)).code == 3003


async def _post_new_password(http, form: Page, password: str) -> Page:
    action, fields = form.form()
    origin = "/".join(form.url.split("/")[:3])
    async with http.post(
        action,
        data={**fields, "password": password, "repeat": password},
        headers={"Origin": origin, "Sec-Fetch-Site": "same-origin"},
    ) as response:
        return Page(str(response.url), response.status, await response.text())


async def test_a_settings_change_applies_to_the_next_request(system, api, make_app, sessions):
    """The tenant cache hears of changes on its LISTEN connection, which goes to PostgreSQL itself:
    through a transaction pooler it would hear nothing and answer stale settings."""
    app = await make_app("Pooled settings")
    for _ in range(3):
        assert (await api.register(app, {"email": unique_address(), "password": PASSWORD})).status == 200
    async with sessions() as session, session.begin():
        await session.execute(update(App).where(App.app_id == app.app_id).values(registration_enabled=False))
    assert (await api.register(app, {"email": unique_address(), "password": PASSWORD})).code == 3009


async def test_concurrent_signups_share_the_server_connections(system, api, make_app):
    app = await make_app("Pooled burst", email_confirmation_required=True)
    addresses = [unique_address("burst") for _ in range(60)]
    answers = await asyncio.gather(
        *(api.register(app, {"email": address, "password": PASSWORD}) for address in addresses)
    )
    assert [answer.status for answer in answers] == [200] * len(addresses)
    for address in addresses:
        assert len(await system.wait_for_emails(address)) == 1


async def test_the_command_works_through_the_pooler(system, pooled_settings):
    env = {
        **os.environ,
        "DATABASE_URL": pooled_settings.database_dsn,
        "DATABASE_TRANSACTION_POOLER": "true",
        "DATABASE_DIRECT_URL": pooled_settings.database_session_dsn,
        "AMQP_URL": pooled_settings.amqp_dsn,
        "EVENTS_EXCHANGE": pooled_settings.events_exchange,
    }

    async def userreg(*args: str) -> object:
        process = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "userreg"),
            *args,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        return json.loads(out)

    assert (await userreg("migrate"))["migrated"] is True
    created = await userreg("app", "create", "--name", f"Pooled {os.getpid()}-{id(env)}")
    shown = await userreg("app", "show", created["appId"])
    assert shown["appId"] == created["appId"]
