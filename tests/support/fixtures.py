"""Fixtures that tests of several folders use, loaded for every test by the root conftest."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, async_playwright
from sqlalchemy import select

from tests.support.api import Api
from userreg.shared.db import User, UserStatus


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# Browser tests drive Debian's Chromium (`make chromium` installs it), headless.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium for the test; closed after it."""
    if not await asyncio.to_thread(Path(CHROMIUM).exists):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
def api(http: aiohttp.ClientSession, system) -> Api:
    """The registration API of the folder's `system` (a whole system of real processes)."""
    return Api(http, system.registration_url)


@pytest.fixture
def user_status(sessions):
    """`await user_status(user_id)`: the user's status as stored."""

    async def read(user_id: str) -> UserStatus:
        async with sessions() as session:
            return await session.scalar(select(User.status).where(User.object_id == user_id))

    return read
