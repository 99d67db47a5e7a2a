"""Fixtures that tests of several folders use, loaded for every test by the root conftest."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy import select

from tests.support.api import Api
from userreg.shared.db import User, UserStatus


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


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
