"""Batching single calls into one round trip: what several concurrent callers ask for while a
statement is in flight goes together as the next statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Runs single calls as batches: calls made while a batch is in flight (a database round trip)
    wait and go together as the next one. Under load one statement serves many calls; alone, a
    call goes out at once. `run` gets the items and returns one result per item, in order."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], max_size: int = 500) -> None:
        self._run = run
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                await asyncio.sleep(0)  # calls made in this same turn of the loop join the batch
                batch, self._pending = self._pending[: self._max_size], self._pending[self._max_size :]
                batch = [(item, future) for item, future in batch if not future.cancelled()]
                if not batch:
                    continue
                try:
                    results = await self._run([item for item, _ in batch])
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._flusher = None
            # Cancelled mid-batch (shutdown): nobody may wait forever.
            for _, future in batch + self._pending:
                if not future.done():
                    future.cancel()
