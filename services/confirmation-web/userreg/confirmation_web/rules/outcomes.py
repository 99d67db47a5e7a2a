"""What a page is served with: its HTTP status, and the token only where the page has a form."""

from __future__ import annotations

from datetime import datetime

from userreg.confirmation_web.model import Link, Outcome
from userreg.shared.templates import Page

HTTP_STATUS: dict[Page, int] = {
    Page.PENDING: 200,
    Page.CONFIRMED: 200,
    Page.EXPIRED: 410,
    Page.DISABLED: 403,
    Page.FAILED: 404,
    Page.PASSWORD_RESET: 200,
    Page.PASSWORD_RESET_DONE: 200,
    Page.PASSWORD_RESET_EXPIRED: 410,
    Page.PASSWORD_RESET_FAILED: 404,
    Page.EMAIL_CHANGE_PENDING: 200,
    Page.EMAIL_CHANGE_DONE: 200,
    Page.EMAIL_CHANGE_FAILED: 404,
}

# The pages whose forms post the link's token (to confirm, to set the password, to ask for a new link).
PAGES_WITH_A_FORM = frozenset(
    {Page.PENDING, Page.EXPIRED, Page.PASSWORD_RESET, Page.PASSWORD_RESET_EXPIRED, Page.EMAIL_CHANGE_PENDING}
)


def show(
    page: Page,
    link: Link,
    token: str | None = None,
    *,
    status: int | None = None,
    just_confirmed: bool = False,
    resend: str | None = None,
    retry_after_seconds: int | None = None,
    new_link_expires_at: datetime | None = None,
    password_problem: str | None = None,
    new_email: str | None = None,
) -> Outcome:
    """The outcome that shows a link's page; the token goes back only to pages with a form."""
    return Outcome(
        page=page,
        status=status or HTTP_STATUS[page],
        link=link,
        token=token if page in PAGES_WITH_A_FORM else None,
        just_confirmed=just_confirmed,
        resend=resend,
        retry_after_seconds=retry_after_seconds,
        new_link_expires_at=new_link_expires_at,
        password_problem=password_problem,
        new_email=new_email,
    )


def show_failure(
    failure: str, app: tuple[str, str] | None, status: int | None = None, page: Page = Page.FAILED
) -> Outcome:
    """A failed page (the confirmation's, `Page.PASSWORD_RESET_FAILED` or `Page.EMAIL_CHANGE_FAILED`), naming the app
    (appId, name) of the path when it exists."""
    return Outcome(
        page=page,
        status=status or HTTP_STATUS[page],
        failure=failure,
        app_id=app[0] if app else None,
        app_name=app[1] if app else None,
    )


def can_resend(outcome: Outcome) -> bool:
    """Whether an expired page may offer a new link: it carries the token, and (for a confirmation
    link) the app still confirms emails. A reset link can always be renewed (the cool-down and the
    mailbox cap still apply)."""
    link = outcome.link
    if link is None or not outcome.token:
        return False
    return outcome.page is Page.PASSWORD_RESET_EXPIRED or link.confirmation_required
