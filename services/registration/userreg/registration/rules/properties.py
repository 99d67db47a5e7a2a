"""The property names the registration API gives a meaning to, the shapes of ids and new column
names, and how a client's property name is shown in a message."""

from __future__ import annotations

import json
import re

PASSWORD = "password"
EMAIL = "email"
LOCALE = "blUserLocale"
OBJECT_ID = "objectId"
CLASS = "___class"
USERS_CLASS = "Users"
PASSWORD_MAX_LENGTH = 1024
# The header a session's token travels in, and the property a login's answer carries it as.
USER_TOKEN = "user-token"
# Properties the server owns; a client sending one gets 3021 (compared case-insensitively).
SYSTEM_PROPERTIES = frozenset(
    name.lower()
    for name in (
        "userStatus",
        "created",
        "updated",
        "ownerId",
        "lastLogin",
        "socialAccount",
    )
)
# A new (dynamic) column's name: what a database column or a template variable can be called.
COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,199}$")
# appIds and objectIds.
GUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$")
MAX_PROPERTIES = 200
SHOWN_NAME_LENGTH = 80


def shown(name: str) -> str:
    """A property name for a message: quoted, bounded in length."""
    if len(name) > SHOWN_NAME_LENGTH:
        name = name[:SHOWN_NAME_LENGTH] + "…"
    return json.dumps(name)
