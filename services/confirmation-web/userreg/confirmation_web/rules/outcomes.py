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
}


def show(page: Page, link: Link, token: str | None = None, *, status: int | None = None,
         just_confirmed: bool = False, resend: str | None = None, retry_after_seconds: int | None = None,
         new_link_expires_at: datetime | None = None) -> Outcome:
    """The outcome that shows a link's page; the token goes back only to pages with a form."""
    return Outcome(
        page=page, status=status or HTTP_STATUS[page], link=link,
        token=token if page in (Page.PENDING, Page.EXPIRED) else None,
        just_confirmed=just_confirmed, resend=resend, retry_after_seconds=retry_after_seconds,
        new_link_expires_at=new_link_expires_at,
    )


def show_failure(failure: str, app: tuple[str, str] | None, status: int | None = None) -> Outcome:
    """The failed page, naming the app (appId, name) of the path when it exists."""
    return Outcome(page=Page.FAILED, status=status or HTTP_STATUS[Page.FAILED], failure=failure,
                   app_id=app[0] if app else None, app_name=app[1] if app else None)
