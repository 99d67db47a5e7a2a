"""Waiting for something to become true, with a deadline instead of a fixed sleep."""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@overload
async def eventually(
    check: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


@overload
async def eventually(check: Callable[[], T], *, timeout: float = ..., interval: float = ..., what: str = ...) -> T: ...


async def eventually(
    check: Callable[[], T | Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"
) -> T:
    """Call `check` until it returns something truthy and return that; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)
