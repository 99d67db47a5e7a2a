"""Which page a password-reset link shows, and which new passwords the reset form accepts."""

from __future__ import annotations

import math
from datetime import datetime

from userreg.confirmation_web.model import Failure, Link, Outcome, PasswordProblem
from userreg.confirmation_web.rules.outcomes import show, show_failure
from userreg.shared.db.models import UserStatus
from userreg.shared.templates import Page

# The registration API's limit for a password (docs/api.md, register), so that every password it accepts can
# be reset to, and no reset sets one it would refuse. In characters, as the form's maxlength counts.
PASSWORD_MAX_LENGTH = 1024
# Who may set a new password through a link: a pending user too (the link proves the address).
MAY_RESET = frozenset({UserStatus.ENABLED, UserStatus.EMAIL_CONFIRMATION_PENDING})


def reset_outcome(link: Link, token: str, now: datetime) -> Outcome:
    """The page a reset link shows. The user's status decides first: a DISABLED user's link (and a
    guest's, which no link should have) shows the failed page, so disabling stays in force. Then
    the link's expiry; otherwise the form that sets the new password."""
    if link.status not in MAY_RESET:
        failure = Failure.DISABLED if link.status is UserStatus.DISABLED else Failure.UNKNOWN
        return show_failure(failure, (link.app_id, link.app_name), page=Page.PASSWORD_RESET_FAILED)
    if link.expires_at is not None and link.expires_at <= now:
        return show(Page.PASSWORD_RESET_EXPIRED, link, token)
    return show(Page.PASSWORD_RESET, link, token)


def password_problem(password: str, repeat: str) -> str | None:
    """Why a new password is refused (a `PasswordProblem`), or None when it may be set: it must not
    be empty, must hold at most `PASSWORD_MAX_LENGTH` characters, none that no password can hold
    (the registration API refuses NUL and lone surrogates too), and be repeated exactly."""
    if not password:
        return PasswordProblem.EMPTY
    if len(password) > PASSWORD_MAX_LENGTH:
        return PasswordProblem.TOO_LONG
    if "\x00" in password or not _encodable(password):
        return PasswordProblem.INVALID
    if password != repeat:
        return PasswordProblem.MISMATCH
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def retry_after(seconds: float) -> int:
    """Whole seconds a browser should wait (at least one)."""
    return max(1, math.ceil(seconds))
