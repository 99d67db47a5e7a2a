"""Which page a link shows, and when merely opening it confirms."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from userreg.confirmation_web.model import Link
from userreg.shared.db.models import UserStatus
from userreg.shared.templates import Page


def page_for(link: Link | None, now: datetime) -> Page:
    """The page a link shows. The user's status decides first, so that every link of a confirmed
    user, expired ones included, shows the confirmed page, and a disabled user never sees the
    invitation to confirm. Only a pending user's link can be expired or pending."""
    if link is None:
        return Page.FAILED
    if link.status is UserStatus.DISABLED:
        return Page.DISABLED
    if link.status is UserStatus.ENABLED:
        return Page.CONFIRMED
    if link.status is UserStatus.EMAIL_CONFIRMATION_PENDING:
        expired = link.expires_at is not None and link.expires_at <= now
        return Page.EXPIRED if expired else Page.PENDING
    # A guest never had a confirmation link; a token pointing at one is not a valid link.
    return Page.FAILED


def is_prefetch(headers: Mapping[str, str]) -> bool:
    """True for a browser's speculative fetch (link prefetch, prerender), which is not a user."""
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or "").lower()
    return "prefetch" in purpose or "prerender" in purpose


def confirms_on_open(page: Page, link: Link | None, method: str, headers: Mapping[str, str]) -> bool:
    """Whether merely opening the link confirms. Only when the app opted in (`confirmOnGet`), only
    for a real GET (a HEAD is what link checkers send), and never for a prefetch."""
    return (
        page is Page.PENDING
        and link is not None
        and link.confirm_on_get
        and method == "GET"
        and not is_prefetch(headers)
    )
