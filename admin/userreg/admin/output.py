"""What commands print: JSON on stdout for scripts, notes on stderr for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=_default) + "\n")
    sys.stdout.flush()


def print_json_lines(values: Iterable[Any]) -> None:
    """JSON Lines: each value as one line of compact JSON, written together and flushed."""
    sys.stdout.write(
        "".join(
            json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default) + "\n" for value in values
        )
    )
    sys.stdout.flush()


def note(message: str) -> None:
    """A line for the operator that a script reading stdout never sees."""
    print(message, file=sys.stderr, flush=True)
