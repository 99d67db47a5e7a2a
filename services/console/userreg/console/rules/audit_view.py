"""How the audit log page shows an entry's details and reads its query (page size, paging)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

PAGE_SIZE = 50


def detail_pairs(details: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An entry's details as (name, value) text pairs; values that are not text are shown as JSON."""
    return [
        (key, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str))
        for key, value in details.items()
    ]


def before_id(raw: str | None) -> int | None:
    """The paging cursor of the query (`before=<entry id>`), None when absent or not a positive number."""
    if raw is None or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw) or None
