"""What a page template may use: the context an `Outcome` is rendered with (documented in the
service's README, where app overrides are described). A pure function of the outcome, the page's
language, its CSP nonce and where the service is mounted."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from userreg.confirmation_web.model import Link, Outcome
from userreg.confirmation_web.rules.dates import format_datetime, format_wait
from userreg.confirmation_web.rules.outcomes import can_resend
from userreg.confirmation_web.rules.passwords import PASSWORD_MAX_LENGTH
from userreg.shared.confirmations import SECRET_PROPERTIES


def identity_of(link: Link) -> str | None:
    """The user's value of the app's identity property (their email address, by default)."""
    value = link.properties.get(link.identity_property)
    return None if value is None else str(value)


def page_context(outcome: Outcome, locale: str, nonce: str, base_path: str) -> dict[str, Any]:
    """Everything a page template may use (documented in the service's README); links, forms and
    assets live under `base_path`, the public URL's path."""
    link = outcome.link
    app_id = link.app_id if link else outcome.app_id
    app_name = link.app_name if link else outcome.app_name
    return {
        "page": outcome.page.value,
        "locale": locale,
        "app_id": app_id,
        "app_name": app_name,
        "app_initial": (app_name or "").strip()[:1].upper(),
        "identity_name": link.identity_property if link else None,
        "identity_value": identity_of(link) if link else None,
        "user": {key: value for key, value in link.properties.items() if key not in SECRET_PROPERTIES} if link else {},
        "expires_at": link.expires_at if link else None,
        "expires_at_text": format_datetime(link.expires_at if link else None, locale),
        "token": outcome.token,
        "confirm_url": f"{base_path}/{app_id}/confirm" if app_id else None,
        "resend_url": f"{base_path}/{app_id}/confirm/resend" if app_id else None,
        "reset_url": f"{base_path}/{app_id}/reset-password" if app_id else None,
        "reset_resend_url": f"{base_path}/{app_id}/reset-password/resend" if app_id else None,
        "change_email_url": f"{base_path}/{app_id}/change-email" if app_id else None,
        "new_email": outcome.new_email,
        "password_max_length": PASSWORD_MAX_LENGTH,
        "password_problem": outcome.password_problem,
        "can_resend": can_resend(outcome),
        "just_confirmed": outcome.just_confirmed,
        "resend": outcome.resend,
        "retry_after_seconds": outcome.retry_after_seconds,
        "retry_after_text": format_wait(outcome.retry_after_seconds, locale),
        "new_link_expires_at": outcome.new_link_expires_at,
        "new_link_expires_at_text": format_datetime(outcome.new_link_expires_at, locale),
        "failure": outcome.failure,
        "static_url": f"{base_path}/static",
        "csp_nonce": nonce,
    }


def base_path_of(public_confirmation_url: str) -> str:
    """Where links, forms and assets live: the public URL's path (a proxy may mount us below /)."""
    return urlsplit(public_confirmation_url).path.rstrip("/")
