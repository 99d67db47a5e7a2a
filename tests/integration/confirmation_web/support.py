"""Helpers of the confirmation-web tests."""

from __future__ import annotations

import asyncio
import json
import re
import time


def data_page(html: str) -> str | None:
    """The `data-page` of a page's <body>: how a test tells the pages apart."""
    match = re.search(r'<body[^>]*\bdata-page="([^"]+)"', html)
    return match.group(1) if match else None


async def drain_events(queue, user_id: str) -> list[dict]:
    """Every event about the user that is in the queue now (others are dropped)."""
    found = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        body = json.loads(message.body)
        if body["user"]["objectId"] == user_id:
            found.append({"type": message.type, "message_id": message.message_id, **body})
    return found


async def wait_for_events(queue, user_id: str, event_type: str, outbox_of, timeout: float = 15) -> list[dict]:
    """All events of a type about the user, once the outbox holds none of theirs any more.

    The relay deletes an outbox row only after RabbitMQ confirmed the message, and a confirmed
    message is already in every bound queue; so once the user's rows are gone, the queue holds
    every event about them and counting is exact without waiting for a quiet period."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while True:
        pending = await outbox_of(user_id)
        seen += await drain_events(queue, user_id)
        if not pending and any(event["type"] == event_type for event in seen):
            seen += await drain_events(queue, user_id)
            return [event for event in seen if event["type"] == event_type]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {event_type} published for {user_id} within {timeout}s "
                f"(outbox: {pending}, seen: {[event['type'] for event in seen]})"
            )
        await asyncio.sleep(0.05)


async def wait_for_event_types(
    queue, user_id: str, event_types: set[str], outbox_of, timeout: float = 15
) -> dict[str, list[dict]]:
    """Every event about the user by type, once each of `event_types` was seen and the outbox holds
    none of theirs any more (exact for the reason `wait_for_events` gives)."""
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while True:
        pending = await outbox_of(user_id)
        seen += await drain_events(queue, user_id)
        if not pending and event_types <= {event["type"] for event in seen}:
            seen += await drain_events(queue, user_id)
            by_type: dict[str, list[dict]] = {}
            for event in seen:
                by_type.setdefault(event["type"], []).append(event)
            return by_type
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not all of {sorted(event_types)} published for {user_id} within "
                f"{timeout}s (outbox: {pending}, seen: {[event['type'] for event in seen]})"
            )
        await asyncio.sleep(0.05)
