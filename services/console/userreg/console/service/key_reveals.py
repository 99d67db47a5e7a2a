"""API keys shown once: a new app's keys, or an app's rotated keys, are kept here for the one page
that shows them, to the session that made them, and forgotten when shown (or after
`REVEAL_SECONDS`). So reloading that page, or going back to it, never shows them again; a key
that was not copied in time is replaced by rotating the keys again."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from userreg.shared.tokens import hash_token

REVEAL_SECONDS = 600.0
MAX_PENDING = 1000


@dataclass(frozen=True)
class NewKeys:
    rest_api_key: str = field(repr=False)
    server_api_key: str = field(repr=False)


class KeyReveals:
    """Keys waiting to be shown, per (operator session, app). Held in the console's memory only:
    a console that restarts in between forgets them (rotate again)."""

    def __init__(self) -> None:
        self._pending: dict[tuple[bytes, str], tuple[NewKeys, float]] = {}

    def keep(self, session_token: str, app_id: str, keys: NewKeys) -> None:
        now = time.monotonic()
        if len(self._pending) >= MAX_PENDING:
            self._pending = {key: value for key, value in self._pending.items() if value[1] > now}
            if len(self._pending) >= MAX_PENDING:
                self._pending.clear()
        self._pending[(hash_token(session_token), app_id.upper())] = (keys, now + REVEAL_SECONDS)

    def take(self, session_token: str, app_id: str) -> NewKeys | None:
        """The keys to show now, once; None when there are none (shown already, or too late)."""
        found = self._pending.pop((hash_token(session_token), app_id.upper()), None)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]
