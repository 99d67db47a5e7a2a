"""The user status machine: which statuses a status change may ask for, which transitions are
allowed, and what a user who is not waiting for confirmation answers to a new link."""

from __future__ import annotations

from userreg.registration import errors
from userreg.registration.rules.body import Pairs
from userreg.shared.db.models import UserStatus

SETTABLE_STATUSES = (UserStatus.ENABLED, UserStatus.DISABLED)
ALLOWED_TRANSITIONS: dict[UserStatus, frozenset[UserStatus]] = {
    UserStatus.ENABLED: frozenset({UserStatus.DISABLED}),
    UserStatus.DISABLED: frozenset({UserStatus.ENABLED}),
    UserStatus.EMAIL_CONFIRMATION_PENDING: frozenset({UserStatus.ENABLED, UserStatus.DISABLED}),
    UserStatus.GUEST: frozenset(),
}


def status_from_body(pairs: Pairs) -> UserStatus:
    """The target of a status change: 9005 unless the body is `{"userStatus": "ENABLED"|"DISABLED"}`."""
    value = dict(pairs).get("userStatus")
    for status in SETTABLE_STATUSES:
        if value == status.value:
            return status
    raise errors.MalformedRequest('The body must be {"userStatus": "ENABLED"} or {"userStatus": "DISABLED"}')


def parse_status(value: str) -> UserStatus:
    """A target status by name (for the admin command); 9005 for anything but ENABLED / DISABLED."""
    return status_from_body(Pairs([("userStatus", value)]))


def check_status_change(current: UserStatus, target: UserStatus) -> bool:
    """True when the status must change, False when it already is the target; 9006 when the
    transition is not one of ENABLED↔DISABLED, EMAIL_CONFIRMATION_PENDING→ENABLED|DISABLED."""
    if current is target:
        return False
    if target not in ALLOWED_TRANSITIONS[current]:
        raise errors.StatusChangeNotAllowed(f"A user cannot go from {current.value} to {target.value}")
    return True


def not_pending(status: UserStatus) -> errors.AlreadyConfirmed:
    """The 3102 a new confirmation link gets for a user with this status, who is not waiting for
    confirmation (confirmed, or with no email address to confirm)."""
    if status is UserStatus.ENABLED:
        return errors.AlreadyConfirmed()
    return errors.AlreadyConfirmed(f"The user is {status.value}: there is no email address to confirm")
