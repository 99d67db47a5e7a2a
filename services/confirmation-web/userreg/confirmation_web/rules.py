"""The rules of confirmation-web as plain functions: which page a link shows, when opening it may
confirm, which POSTs are accepted, and which language a page speaks. No server, database or
broker is needed to test them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from userreg.shared.db.models import UserStatus
from userreg.shared.templates import Page


HTTP_STATUS: dict[Page, int] = {
    Page.PENDING: 200,
    Page.CONFIRMED: 200,
    Page.EXPIRED: 410,
    Page.DISABLED: 403,
    Page.FAILED: 404,
}


@dataclass(frozen=True)
class Link:
    """What the database knows about a confirmation link: its token row, its user and its app."""

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


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL, lower-cased as browsers serialise it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def is_same_origin_post(headers: Mapping[str, str], public_origin: str) -> bool:
    """Whether a POST may be acted on: it must come from our own page, not from another site.

    The token in the form body already proves that the sender holds the link, so a forged
    cross-site POST could at most do what the link holder can do anyway. Refusing cross-site POSTs
    still closes the remaining abuse (another site making a visitor's browser confirm or ask for
    links on its behalf). Fetch-metadata (`Sec-Fetch-Site`) is the reliable signal: browsers send
    it on every request, and it is not blanked by `Referrer-Policy: no-referrer`, which makes form
    POSTs carry `Origin: null`. Without it (an older browser, a script), a real `Origin` header
    must be ours; a request with neither is not from a browser page and is judged by its token.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None:
        return site.strip().lower() == "same-origin"
    origin = headers.get("Origin")
    if origin is None or origin.strip().lower() == "null":
        return True
    return origin.strip().rstrip("/").lower() == public_origin


def identity_of(link: Link) -> str | None:
    value = link.properties.get(link.identity_property)
    return None if value is None else str(value)
