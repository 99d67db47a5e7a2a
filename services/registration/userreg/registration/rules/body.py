"""A request body as the pairs of one JSON object: the Content-Type it must declare, and what
counts as JSON (no NaN or Infinity, duplicates kept visible)."""

from __future__ import annotations

import json
from typing import Any

from userreg.registration import errors


class Pairs(list):
    """A JSON object as the list of its (name, value) pairs, so duplicates are still visible."""


def is_json_content_type(content_type: str | None) -> bool:
    """`application/json` or any `application/*+json`, parameters (charset) ignored."""
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_object(content_type: str | None, body: bytes, error: type[errors.ApiError]) -> Pairs:
    """The body as the pairs of one JSON object; `error` (with 415 for a non-JSON Content-Type,
    else 400) when it is missing, not JSON, or not an object."""
    if not is_json_content_type(content_type):
        raise error("Content-Type must be application/json", status=415)
    if not body.strip():
        raise error("The request has no body")
    try:
        value = json.loads(body, object_pairs_hook=Pairs, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise error("The request body is not valid JSON") from None
    if not isinstance(value, Pairs):
        raise error("The request body must be a JSON object")
    return value
