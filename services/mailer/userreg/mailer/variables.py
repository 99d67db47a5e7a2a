"""The variables an email template sees for one event: the app's name, the identity, the event's
link (a confirmation or a password-reset link) and when it expires, when the event happened, the
user's properties, and the language the email is written in. No I/O."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from userreg.shared.events import Event
from userreg.shared.templates import pick_locale


class UserProperties:
    """A user's properties as template variables: `user.<column>` or `user["<column>"]`.

    Deliberately not a dict: a dict's methods would shadow columns that share their names
    (`user.items`, `user.keys`), and here a column is found whatever it is called.
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the class does not define; underscored names stay Python's own.
        if name.startswith("_") or name not in self._values:
            raise AttributeError(name)
        return self._values[name]

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def format_time(moment: datetime) -> str:
    """ "2030-01-02 03:04 UTC". Written out rather than with strftime, which took three times as
    long: every email formats one or two of these."""
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} {moment.hour:02d}:{moment.minute:02d} UTC"


def template_context(event: Event, *, app_name: str) -> dict[str, Any]:
    """The variables of docs/api.md, Emails for one event. An event carries at most one link: the confirmation
    link (`confirmation_url`) or the password-reset link (`reset_url`); `expires_at` is the expiry
    of the one it carries. The variable of the link an event does not carry is None, so that a
    template can ask `{% if reset_url %}`."""
    user = event.user
    properties = {**user.properties, "objectId": user.object_id}
    for key, value in (("email", user.email), ("name", user.name)):
        if value is not None:
            properties.setdefault(key, value)
    confirmation, reset = event.confirmation, event.password_reset
    link = confirmation or reset
    return {
        "app_name": app_name,
        "identity_name": user.identity_property,
        "identity_value": user.identity or "",
        "confirmation_url": confirmation.url if confirmation else None,
        "reset_url": reset.url if reset else None,
        "expires_at": format_time(link.expires_at) if link else None,
        "expires_at_iso": link.expires_at.isoformat() if link else None,
        # When the event happened: for the password-changed notice, when the password was changed.
        "occurred_at": format_time(event.occurred_at),
        "user": UserProperties(properties),
        # The address an email-change link confirms (`user.email_change_requested`), else None.
        "new_email": event.new_email,
        # The shipped language closest to the user's `blUserLocale`: the email's words and its `lang`.
        "locale": pick_locale(user.locale),
    }
