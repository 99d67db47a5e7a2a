"""The values confirmation-web works with: what the database knows about a link (`Link`: a
confirmation link or a password-reset link), and what an action on it comes to (`Outcome`: which
page to show, and everything that page says). Plain frozen dataclasses, so that rules, services and
pages share them without knowing of each other."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from userreg.shared.db.models import UserStatus
from userreg.shared.templates import Page


@dataclass(frozen=True)
class Link:
    """What the database knows about a link (a confirmation or a password-reset link): its token
    row, its user and its app."""

    app_id: str
    app_name: str
    identity_property: str
    confirm_on_get: bool
    confirmation_required: bool
    user_id: str
    status: UserStatus
    # The token's expiry; None where no token was looked at (the page right after confirming).
    expires_at: datetime | None
    properties: Mapping[str, Any] = field(default_factory=dict)
    # False when the app is known to override no page, so rendering can skip looking for one.
    has_page_overrides: bool = True


class Resend:
    """How asking for a new link on an expired page (confirmation or password reset) went."""

    SENT = "sent"
    TOO_SOON = "too_soon"
    UNAVAILABLE = "unavailable"  # the app no longer requires confirmation, so it sends no links


class Failure:
    """Why a link shows the failed page (a template may word them differently)."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"  # no such token in this app (a used reset link is gone: single use)
    CROSS_SITE = "cross_site"
    DISABLED = "disabled"  # a reset link of a DISABLED user: disabling stays in force
    EXPIRED = "expired"  # an email-change link past its lifetime
    TAKEN = "taken"  # an email-change link whose address another user took meanwhile


class PasswordProblem:
    """Why the password-reset form is shown again instead of changing the password."""

    EMPTY = "empty"
    TOO_LONG = "too_long"
    MISMATCH = "mismatch"  # the repeat differs from the password
    INVALID = "invalid"  # a character no password may hold (NUL, a lone surrogate)
    BUSY = "busy"  # the password-hashing queue is full: nothing changed, try again shortly


@dataclass(frozen=True)
class Outcome:
    """The page to show and everything it needs to say."""

    page: Page
    status: int
    link: Link | None = None
    # The app named in the path, when the link itself is not found (for the failed page).
    app_id: str | None = None
    app_name: str | None = None
    # Only pages with a form (pending, expired, password-reset and its expired page) carry the
    # token back to the browser.
    token: str | None = None
    # Confirmed by this very request: on the confirmed page, and on the password-reset-done page of
    # a pending user (using the emailed reset link proves the address).
    just_confirmed: bool = False
    resend: str | None = None
    retry_after_seconds: int | None = None
    new_link_expires_at: datetime | None = None
    failure: str | None = None
    password_problem: str | None = None
    # The address an email-change link makes the user's (its pending and done pages).
    new_email: str | None = None
