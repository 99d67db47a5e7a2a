"""The contexts each page is rendered with, filled with sample values: `userreg template set`
renders an app's override with every one of them before it stores it (through `operations`), so a
template that fails on any way confirmation-web shows its page is refused up front. (The reset
pages' sample links live `link_ttl_seconds` too: only the dates shown differ from real ones.)"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from userreg.confirmation_web.model import Failure, Link, Outcome, PasswordProblem, Resend
from userreg.confirmation_web.page_context import base_path_of, page_context
from userreg.confirmation_web.rules.outcomes import show, show_failure
from userreg.shared.clock import utcnow
from userreg.shared.db.models import UserStatus
from userreg.shared.templates import Page
from userreg.shared.tokens import new_guid, new_token

SAMPLE_NONCE = "sample-nonce"
SAMPLE_NEW_EMAIL = "new.address@example.com"
# Why an email-change link fails, and the status its page is served with.
EMAIL_CHANGE_FAILURES = (
    (Failure.UNKNOWN, 404),
    (Failure.MALFORMED, 404),
    (Failure.CROSS_SITE, 403),
    (Failure.DISABLED, 403),
    (Failure.EXPIRED, 410),
    (Failure.TAKEN, 409),
)


def sample_contexts(
    page_name: str,
    *,
    app_id: str,
    app_name: str,
    identity_property: str,
    properties: Mapping[str, Any],
    link_ttl_seconds: int,
    public_confirmation_url: str,
    locale: str,
) -> list[dict[str, Any]]:
    """The contexts a page is rendered with, one for each way confirmation-web shows it, filled with
    sample values: `userreg template set` renders an override with them before it stores it."""
    page = Page(page_name)
    now = utcnow()
    ttl = timedelta(seconds=link_ttl_seconds)
    token = new_token()

    def link(status: UserStatus, expires_at: datetime | None) -> Link:
        return Link(
            app_id=app_id,
            app_name=app_name,
            identity_property=identity_property,
            confirm_on_get=False,
            confirmation_required=True,
            user_id=new_guid(),
            status=status,
            expires_at=expires_at,
            properties=properties,
        )

    pending = link(UserStatus.EMAIL_CONFIRMATION_PENDING, now + ttl)
    expired = link(UserStatus.EMAIL_CONFIRMATION_PENDING, now - timedelta(hours=1))
    confirmed = link(UserStatus.ENABLED, None)
    reset = link(UserStatus.ENABLED, now + ttl)
    reset_expired = link(UserStatus.ENABLED, now - timedelta(hours=1))
    problems = (PasswordProblem.EMPTY, PasswordProblem.TOO_LONG, PasswordProblem.MISMATCH, PasswordProblem.INVALID)
    outcomes: list[Outcome] = {
        Page.PENDING: [show(Page.PENDING, pending, token)],
        Page.CONFIRMED: [show(Page.CONFIRMED, confirmed, just_confirmed=True), show(Page.CONFIRMED, confirmed)],
        Page.EXPIRED: [
            show(Page.EXPIRED, expired, token),
            show(Page.EXPIRED, expired, token, status=429, resend=Resend.TOO_SOON, retry_after_seconds=42),
            show(Page.EXPIRED, expired, token, resend=Resend.UNAVAILABLE),
            show(Page.EXPIRED, expired, status=200, resend=Resend.SENT, new_link_expires_at=now + ttl),
        ],
        Page.DISABLED: [show(Page.DISABLED, link(UserStatus.DISABLED, now + ttl))],
        Page.FAILED: [
            show_failure(failure, (app_id, app_name))
            for failure in (Failure.UNKNOWN, Failure.MALFORMED, Failure.CROSS_SITE)
        ],
        Page.PASSWORD_RESET: [
            show(Page.PASSWORD_RESET, reset, token),
            *(show(Page.PASSWORD_RESET, reset, token, status=400, password_problem=problem) for problem in problems),
            show(
                Page.PASSWORD_RESET,
                reset,
                token,
                status=503,
                password_problem=PasswordProblem.BUSY,
                retry_after_seconds=3,
            ),
        ],
        Page.PASSWORD_RESET_DONE: [
            show(Page.PASSWORD_RESET_DONE, confirmed),
            show(Page.PASSWORD_RESET_DONE, confirmed, just_confirmed=True),
        ],
        Page.PASSWORD_RESET_EXPIRED: [
            show(Page.PASSWORD_RESET_EXPIRED, reset_expired, token),
            show(
                Page.PASSWORD_RESET_EXPIRED,
                reset_expired,
                token,
                status=429,
                resend=Resend.TOO_SOON,
                retry_after_seconds=42,
            ),
            show(
                Page.PASSWORD_RESET_EXPIRED,
                reset_expired,
                status=200,
                resend=Resend.SENT,
                new_link_expires_at=now + ttl,
            ),
        ],
        Page.PASSWORD_RESET_FAILED: [
            show_failure(failure, (app_id, app_name), page=Page.PASSWORD_RESET_FAILED)
            for failure in (Failure.UNKNOWN, Failure.MALFORMED, Failure.CROSS_SITE, Failure.DISABLED)
        ],
        Page.EMAIL_CHANGE_PENDING: [show(Page.EMAIL_CHANGE_PENDING, reset, token, new_email=SAMPLE_NEW_EMAIL)],
        Page.EMAIL_CHANGE_DONE: [show(Page.EMAIL_CHANGE_DONE, confirmed, new_email=SAMPLE_NEW_EMAIL)],
        Page.EMAIL_CHANGE_FAILED: [
            show_failure(failure, (app_id, app_name), status, page=Page.EMAIL_CHANGE_FAILED)
            for failure, status in EMAIL_CHANGE_FAILURES
        ],
    }[page]
    base_path = base_path_of(public_confirmation_url)
    return [page_context(outcome, locale, SAMPLE_NONCE, base_path) for outcome in outcomes]
