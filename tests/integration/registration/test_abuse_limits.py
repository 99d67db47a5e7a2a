"""the README's Security section through the real service: what a public REST key can make the system do is bounded.

Schema growth (a failed registration adds no column; `maxDynamicColumns` → 9007), rate limits per
app and client address (9008), and mailboxes (email identities compared as mailboxes; cool-down and
daily cap per mailbox, 9001).
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from tests.integration.registration.client import Api
from tests.support.links import age_links
from userreg.shared.db import MailboxEmail, SchemaColumn


async def _columns(sessions, app_id: str) -> set[str]:
    async with sessions() as session:
        return set(await session.scalars(select(SchemaColumn.name).where(SchemaColumn.app_id == app_id)))


def _random_properties(count: int) -> dict[str, str]:
    return {f"p{uuid.uuid4().hex[:12]}": "x" for _ in range(count)}


# --- schema growth ------------------------------------------------------------------------------


async def test_failed_registrations_add_no_column(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    assert (await api.register({"email": email, "password": "pw"}))[0] == 200
    before = await _columns(sessions, api.app.app_id)

    for _ in range(3):
        status, body = await api.register({"email": email, "password": "pw", **_random_properties(30)})
        assert (status, body["code"]) == (409, 3033)

    assert await _columns(sessions, api.app.app_id) == before


async def test_a_successful_registration_adds_its_columns(api_for, unique_email, sessions):
    api = await api_for()
    status, user = await api.register({"email": unique_email(), "password": "pw", "shoeSize": 44})
    assert status == 200 and user["shoeSize"] == 44
    assert "shoeSize" in await _columns(sessions, api.app.app_id)


async def test_the_dynamic_column_cap_answers_9007_after_3010(api_for, unique_email, sessions):
    api = await api_for(max_dynamic_columns=3)
    status, body = await api.register({"email": unique_email(), "password": "pw", **_random_properties(4)})
    assert (status, body["code"]) == (400, 9007)
    assert "3" in body["message"]

    assert (await api.register({"email": unique_email(), "password": "pw", **_random_properties(3)}))[0] == 200
    status, body = await api.register({"email": unique_email(), "password": "pw", **_random_properties(1)})
    assert (status, body["code"]) == (400, 9007)
    # Properties that are columns already add nothing and pass.
    assert (await api.register({"email": unique_email(), "password": "pw", "name": "Ann"}))[0] == 200

    closed = await api_for(dynamic_schema=False, max_dynamic_columns=0)
    status, body = await closed.register({"email": unique_email(), "password": "pw", "extra": 1})
    assert (status, body["code"]) == (400, 3010)


async def test_the_cap_holds_under_concurrent_registrations(api_for, unique_email, sessions):
    api = await api_for(max_dynamic_columns=10)
    built_in = len(await _columns(sessions, api.app.app_id))
    answers = await asyncio.gather(
        *(api.register({"email": unique_email(), "password": "pw", **_random_properties(3)}) for _ in range(12))
    )
    assert {status for status, _ in answers} <= {200, 400}
    assert sum(1 for status, _ in answers if status == 200) == 3
    assert all(body["code"] == 9007 for status, body in answers if status == 400)
    assert len(await _columns(sessions, api.app.app_id)) - built_in == 9


# --- rate limits --------------------------------------------------------------------------------


async def _codes(calls) -> list[int | None]:
    return [
        body["code"] if isinstance(body, dict) and "code" in body else None for _, body in await asyncio.gather(*calls)
    ]


async def test_the_rate_limit_counts_every_limited_operation_per_app_and_client(api_for, unique_email):
    api = await api_for(client_rate_limit="4/60s", email_confirmation_required=True)
    email = unique_email()
    assert (await api.register({"email": email, "password": "pw"}))[0] == 200
    assert (await api.guest())[0] == 200
    assert (await api.login(email, "wrong"))[1]["code"] == 3003
    assert (await api.resend(email))[1]["code"] == 9001  # the resend cool-down, but counted

    async with api.client.post(
        api.path("/users/register"), json={"email": unique_email(), "password": "pw"}
    ) as response:
        assert response.status == 429
        assert (await response.json())["code"] == 9008
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    for status, body in (await api.guest(), await api.login(email, "pw"), await api.resend(email)):
        assert (status, body["code"]) == (429, 9008)

    # The server key is not limited; another app is not affected.
    status, _ = await api.register({"email": unique_email(), "password": "pw"}, key=api.app.server_api_key)
    assert status == 200
    other = Api(api.client, (await api_for(client_rate_limit="4/60s")).app)
    assert (await other.guest())[0] == 200


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_changes_nothing(api_for):
    api = await api_for(client_rate_limit="2/60s")
    codes = await _codes(api.guest(headers={"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(5))
    assert sorted(codes, key=str).count(9008) == 3


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(start_service, make_app):
    client = await start_service(trusted_proxies="127.0.0.0/8,::1/128")
    api = Api(client, await make_app(client_rate_limit="2/60s"))
    for n in range(3):
        codes = await _codes(api.guest(headers={"X-Forwarded-For": f"203.0.113.9, 198.51.100.{n}"}) for _ in range(3))
        assert codes.count(9008) == 1
    # What a client writes left of the proxy's entry is not trusted: it is counted as the same client.
    codes = await _codes(api.guest(headers={"X-Forwarded-For": f"192.0.2.{n}, 198.51.100.0"}) for n in range(2))
    assert codes == [9008, 9008]


async def test_two_replicas_share_one_limit(start_service, make_app):
    app = await make_app(client_rate_limit="6/60s")
    first, second = Api(await start_service(), app), Api(await start_service(), app)
    codes = await _codes((first if n % 2 else second).guest() for n in range(10))
    assert codes.count(9008) == 4


async def test_limits_off_are_off(api_for):
    api = await api_for(client_rate_limit="off")
    assert 9008 not in await _codes(api.guest() for _ in range(80))


# --- mailboxes ----------------------------------------------------------------------------------


async def test_idn_and_case_forms_of_an_email_are_one_identity(api_for):
    api = await api_for()
    local = f"v{uuid.uuid4().hex[:8]}"
    assert (await api.register({"email": f"{local}@bücher.de", "password": "pw"}))[0] == 200
    for other in (f"{local}@xn--bcher-kva.de", f"{local.upper()}@BÜCHER.DE", f"{local}@XN--BCHER-KVA.de"):
        status, body = await api.register({"email": other, "password": "pw"})
        assert (status, body["code"]) == (409, 3033), other
    status, body = await api.login(f"{local.upper()}@xn--bcher-kva.DE", "pw")
    assert status == 200 and body["email"] == f"{local}@bücher.de"


async def test_users_sharing_a_mailbox_share_its_cool_down(api_for, unique_email):
    api = await api_for(identity_property="name", email_confirmation_required=True)
    email = unique_email()
    assert (await api.register({"name": "first", "email": email, "password": "pw"}))[0] == 200
    async with api.client.post(
        api.path("/users/register"), json={"name": "second", "email": email.upper(), "password": "pw"}
    ) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (429, 9001)
        assert 1 <= int(response.headers["Retry-After"]) <= 60
    # The identity is not the address: a taken name is still 3033 when the mailbox is free.
    status, body = await api.register({"name": "first", "email": unique_email(), "password": "pw"})
    assert (status, body["code"]) == (409, 3033)


async def test_the_daily_cap_counts_per_mailbox(start_service, make_app, sessions, unique_email):
    client = await start_service(resend_cooldown_seconds=0)
    api = Api(
        client, await make_app(identity_property="name", email_confirmation_required=True, mailbox_daily_email_limit=3)
    )
    email = unique_email()
    first = (await api.register({"name": "a", "email": email, "password": "pw"}))[1]
    assert (await api.register({"name": "b", "email": email, "password": "pw"}))[0] == 200
    assert (await api.resend("a"))[0] == 200

    status, body = await api.register({"name": "c", "email": email, "password": "pw"})
    assert (status, body["code"]) == (429, 9001)
    status, body = await api.resend("b")
    assert (status, body["code"]) == (429, 9001)
    assert "3 emails" in body["message"]

    # A day later the mailbox may be written to again.
    await age_links(sessions, first["objectId"], 86400 + 1)
    assert (await api.resend("b"))[0] == 200
    async with sessions() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(MailboxEmail).where(MailboxEmail.app_id == api.app.app_id)
            )
            == 4
        )
