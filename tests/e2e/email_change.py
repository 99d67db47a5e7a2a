"""The email change the SDK flow (tests/sdk/user_flow.js) asks for, followed to its end: the link
emailed to the new address, its page, its POST, and which address signs in before and after."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import aiohttp

from tests.support.api import PASSWORD, AppKeys
from tests.support.system import System

if TYPE_CHECKING:
    from tests.e2e.sdk import UserFlow


async def confirm_email_change(system: System, flow: UserFlow) -> None:
    """The email change the flow asked for: its link went to the new address; until the link is
    confirmed the user signs in with the old address, afterwards with the new one only."""
    keys = AppKeys.of(flow.confirming)
    [email] = await system.wait_for_emails(flow.addresses.changed)
    links = set(
        re.findall(re.escape(system.confirmation_url) + r"/[0-9A-Fa-f-]+/change-email/[A-Za-z0-9_-]+", email.text)
    )
    assert len(links) == 1, email.text
    link = links.pop()
    login = f"{system.registration_url}/{keys.app_id}/{keys.rest_api_key}/users/login"
    async with aiohttp.ClientSession() as http:
        async with http.post(login, json={"login": flow.addresses.changed, "password": PASSWORD}) as response:
            assert response.status == 401  # not yet
        async with http.get(link) as response:
            assert response.status == 200 and 'data-page="email-change-pending"' in await response.text()
        async with http.post(
            f"{system.confirmation_url}/{keys.app_id}/change-email",
            data={"token": link.rsplit("/", 1)[1]},
            headers={"Sec-Fetch-Site": "same-origin", "Origin": "null"},
        ) as response:
            assert response.status == 200 and 'data-page="email-change-done"' in await response.text()
        for address, status in ((flow.addresses.changed, 200), (flow.addresses.confirmed, 401)):
            async with http.post(login, json={"login": address, "password": PASSWORD}) as response:
                assert response.status == status, address
