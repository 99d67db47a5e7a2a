"""How the before-register webhook's answer is read: which answers refuse the user, and the
message passed on to the client (3014)."""

from __future__ import annotations

import json

WEBHOOK_MESSAGE_LENGTH = 200


def webhook_refusal(status: int, content_type: str | None, body: bytes) -> str | None:
    """Why the webhook's answer refuses the user, or None when it allows it.

    Any non-2xx refuses. A 2xx allows unless its body is a JSON object saying no: `"allow": false`,
    `"allowed": false`, `"reject": true`, `"rejected": true` or `"status": "reject"|"rejected"|"deny"|
    "denied"`; its `"message"` (a string) is passed on to the client, shortened and on one line.
    """
    if not 200 <= status < 300:
        return f"the webhook answered HTTP {status}"
    try:
        answer = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        return None
    if not isinstance(answer, dict):
        return None
    refused = (
        answer.get("allow") is False
        or answer.get("allowed") is False
        or answer.get("reject") is True
        or answer.get("rejected") is True
        or str(answer.get("status", "")).lower() in ("reject", "rejected", "deny", "denied")
    )
    if not refused:
        return None
    message = answer.get("message")
    if isinstance(message, str) and message.strip():
        text = " ".join(message.split())[:WEBHOOK_MESSAGE_LENGTH]
        return f"the webhook rejected the user: {text}"
    return "the webhook rejected the user"
