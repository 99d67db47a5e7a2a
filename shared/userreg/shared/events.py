"""The events userreg publishes (docs/api.md, Events), version 1. Serialised only at the edges."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from userreg.shared.clock import utcnow

USER_REGISTERED: Final = "user.registered"
USER_CONFIRMATION_REQUESTED: Final = "user.confirmation_requested"
USER_CONFIRMED: Final = "user.confirmed"
USER_PASSWORD_RESET_REQUESTED: Final = "user.password_reset_requested"
USER_PASSWORD_CHANGED: Final = "user.password_changed"
USER_EMAIL_CHANGE_REQUESTED: Final = "user.email_change_requested"
EventType = Literal[
    "user.registered",
    "user.confirmation_requested",
    "user.confirmed",
    "user.password_reset_requested",
    "user.password_changed",
    "user.email_change_requested",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class EventUser(_Frozen):
    object_id: str = Field(alias="objectId")
    identity_property: str = Field(alias="identityProperty")
    identity: str | None
    email: str | None = None
    name: str | None = None
    locale: str | None = None
    # Every non-secret property of the user; never the password or its hash.
    properties: dict[str, Any] = Field(default_factory=dict)


class Confirmation(_Frozen):
    """A link the user is emailed, and when it expires: a confirmation link, or a password-reset link."""

    url: str
    expires_at: datetime = Field(alias="expiresAt")


class Event(_Frozen):
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    type: EventType
    version: Literal[1] = 1
    occurred_at: datetime = Field(default_factory=utcnow, alias="occurredAt")
    app_id: str = Field(alias="appId")
    user: EventUser
    confirmation: Confirmation | None = None
    # `user.password_reset_requested` only: the reset link (never in any other event).
    password_reset: Confirmation | None = Field(default=None, alias="passwordReset")
    # `user.email_change_requested` only: the new address, which its `confirmation` link confirms
    # and its email goes to (`user` still has the old one).
    new_email: str | None = Field(default=None, alias="newEmail")

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, ISO-8601 UTC times."""
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Event:
        """Parse a message body; raises `pydantic.ValidationError` for a malformed event."""
        return cls.model_validate_json(body)
