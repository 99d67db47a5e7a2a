"""The app's before-register webhook: asked before a user is created, may refuse it (3014).

The webhook receives `{"event": "beforeRegister", "appId": …, "user": {…}}` as JSON, where `user`
is the candidate's properties (never the password) plus `objectId` when a guest is being
converted. How its answer is read is `rules.webhook.webhook_refusal`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from userreg.registration import errors
from userreg.registration.rules.webhook import webhook_refusal

logger = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 64 * 1024


class BeforeRegisterWebhook:
    """Calls webhooks through one shared `aiohttp.ClientSession` with the configured timeout."""

    def __init__(self, http: aiohttp.ClientSession, timeout_seconds: float) -> None:
        self._http = http
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    async def check(self, url: str, app_id: str, user: dict[str, Any]) -> None:
        """Return when the webhook allows the user; raise 3014 when it refuses, fails, is too slow
        or redirects (redirects are not followed)."""
        payload = {"event": "beforeRegister", "appId": app_id, "user": user}
        try:
            # Never followed: a redirect would send the candidate's properties to a server the app
            # did not name (and one it may not reach from outside, an internal address). A 3xx is
            # a non-2xx answer like any other, and refuses.
            async with self._http.post(
                url,
                json=payload,
                timeout=self._timeout,
                allow_redirects=False,
                headers={"User-Agent": "userreg-registration"},
            ) as response:
                body = await response.content.read(MAX_ANSWER_BYTES)
                refusal = webhook_refusal(response.status, response.headers.get("Content-Type"), body)
        except (TimeoutError, aiohttp.ClientError, ValueError) as error:
            # The URL may carry a secret in its path or query: log its host only.
            logger.warning(
                "before-register webhook failed app=%s host=%s error=%s", app_id, _host(url), type(error).__name__
            )
            reason = "timed out" if isinstance(error, asyncio.TimeoutError) else "could not be reached"
            raise errors.ExternalRegistrationFailed(
                f"External registration failed with an error: the webhook {reason}"
            ) from None
        if refusal is not None:
            logger.info("before-register webhook refused app=%s host=%s", app_id, _host(url))
            raise errors.ExternalRegistrationFailed(f"External registration failed with an error: {refusal}")


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"
