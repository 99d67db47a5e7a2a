"""An event loop in a thread of its own, for test machinery that must outlive one test's loop.

pytest-asyncio gives every test a fresh loop; a module-scoped system (an SMTP inbox, TCP proxies)
lives in this loop instead and tests reach into it with `await background.call(coro)`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """`start()`, then `run(coro)` from plain code or `await call(coro)` from another loop; `stop()`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        ready = threading.Event()

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            ready.set()
            try:
                self.loop.run_forever()
            finally:
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
                self.loop.close()

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        ready.wait()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run `coro` in the background loop and block until it is done."""
        return asyncio.run_coroutine_threadsafe(coro, self._running()).result(timeout)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` in the background loop; await its result from the caller's loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._running()))

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return
        loop = self.loop

        async def cancel_the_rest() -> None:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_the_rest(), timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(30)
        self._thread = None

    def _running(self) -> asyncio.AbstractEventLoop:
        if self.loop is None or self._thread is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.loop
