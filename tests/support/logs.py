"""The log lines a test's code writes, as LOG_FORMAT=json writes them, and servers that run with
aiohttp's own access log off, as the services do (`web.run_app(access_log=None)`)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Callable, Iterator

from aiohttp import web
from aiohttp.test_utils import TestServer

from userreg.shared.logs import log_handler

ACCESS_LOGGER = "userreg.access"


class JsonLines:
    """Every record written while it is installed on the root logger, each as its parsed JSON line."""

    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    @property
    def text(self) -> str:
        return self._stream.getvalue()

    def all(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self, where: Callable[[dict], bool] = lambda line: True) -> list[dict]:
        """The access log's lines (that `where` accepts)."""
        return [line for line in self.all() if line["logger"] == ACCESS_LOGGER and where(line)]


@contextlib.contextmanager
def json_lines(service: str = "test", *, level: int = logging.INFO) -> Iterator[JsonLines]:
    """Install a JSON handler on the root logger at `level` (the access log at DEBUG, probes included).
    aiohttp's own access log, which test servers write unless told not to and the services never
    do, is left out."""
    stream = io.StringIO()
    handler = log_handler(service, "json", stream)
    handler.addFilter(lambda record: record.name != "aiohttp.access")
    root, access = logging.getLogger(), logging.getLogger(ACCESS_LOGGER)
    saved = root.level, access.level
    root.addHandler(handler)
    root.setLevel(level)
    access.setLevel(logging.DEBUG)
    try:
        yield JsonLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        access.setLevel(saved[1])


async def serve(app: web.Application) -> TestServer:
    """The app on a free local port, with aiohttp's own access log off; the caller closes it."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(access_log=None)
    return server
