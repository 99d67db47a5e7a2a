"""An access log that never writes a token: a confirmation or password-reset link's path holds one."""

from __future__ import annotations

import logging
import re

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

# /{appId}/confirm/{token} and /{appId}/reset-password/{token}: keep the app (useful when reading
# logs), drop the token.
_TOKEN_IN_PATH = re.compile(r"^(/[^/]*/(?:confirm|reset-password)/)[^/?]+")


def redact_path(path: str) -> str:
    return _TOKEN_IN_PATH.sub(r"\1[token]", path)


class RedactingAccessLogger(AbstractAccessLogger):
    """One DEBUG line per request (method, path without token or query, status, time)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        self.logger.debug("%s %s %s %.1fms", request.method, redact_path(request.path), response.status,
                          time * 1000)

    @property
    def enabled(self) -> bool:
        # Checked by aiohttp before each call, so the hot path pays nothing when it is off.
        return self.logger.isEnabledFor(logging.DEBUG)
