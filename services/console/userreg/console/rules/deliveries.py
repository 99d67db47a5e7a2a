"""What the Deliveries pages say of an email and how they read their query. An email's state
(sent, sending, retrying, dead-lettered) is decided by the query that lists them
(`repository.deliveries`, so that it can be filtered on); the reason shown for it, the filter and
the paging are decided here. Pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

SENT = "sent"
SENDING = "sending"
RETRYING = "retrying"
DEAD_LETTERED = "dead-lettered"
STATES = (SENT, SENDING, RETRYING, DEAD_LETTERED)
PAGE_SIZE = 50
# Pages further back than this are not offered (the mailer prunes records after MAIL_RETENTION_DAYS anyway).
MAX_PAGE = 1000
# An appId is a GUID; anything longer in the query is cut before it reaches a query.
MAX_APP_ID = 36


@dataclass(frozen=True)
class DeliveryRow:
    """One email as the repository lists it: a delivery record with its event's dead letter (or,
    without a record, the dead letter of an event that failed before its emails were claimed)."""

    event_id: str
    app_id: str | None
    # The email's template; None for a dead letter that never got as far as its emails.
    template: str | None
    state: str
    attempts: int
    last_error: str | None
    dead_letter_reason: str | None
    at: datetime
    # The event's type when it was dead-lettered (the delivery record does not keep it).
    event_type: str | None
    # The address the email went to, as far as the records tell it (an event's dead letter does).
    recipient: str | None


@dataclass(frozen=True)
class Delivery:
    event_id: str
    app_id: str | None
    template: str | None
    state: str
    reason: str | None
    attempts: int
    at: datetime
    event_type: str | None
    recipient: str | None


@dataclass(frozen=True)
class DeliveryQuery:
    """Which emails a page lists: of one app or every app, in one state or any, which page."""

    app_id: str | None
    state: str | None
    page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE


def delivery_query(query: Mapping[str, str], *, app_id: str | None = None) -> DeliveryQuery:
    """The page's query (`app`, `state`, `page`; `app_id` when the page is one app's): an unknown
    state or a page that is no number lists from the start, with every state."""
    app = app_id if app_id is not None else (query.get("app", "").strip()[:MAX_APP_ID] or None)
    state = query.get("state", "")
    return DeliveryQuery(app, state if state in STATES else None, page_number(query.get("page")))


def listing_url(path: str, query: DeliveryQuery, page: int, *, app_in_query: bool) -> str:
    """The address of another page of the same listing (the app in the query only on the page of
    every app: an app's page has it in its path)."""
    params = {}
    if app_in_query and query.app_id:
        params["app"] = query.app_id
    if query.state:
        params["state"] = query.state
    if page > 1:
        params["page"] = str(page)
    return f"{path}?{urlencode(params)}" if params else path


def page_number(raw: str | None) -> int:
    raw = (raw or "").strip()
    if not raw.isdigit() or len(raw) > 6:
        return 1
    return min(max(int(raw), 1), MAX_PAGE)


def reason_of(row: DeliveryRow) -> str | None:
    """Why an email is where it is: a dead letter's reason, a retrying email's last error (or, for
    one replayed from the dead letters, why it died before); none for the others."""
    if row.state == DEAD_LETTERED:
        return row.dead_letter_reason
    if row.state == RETRYING:
        return row.last_error or (f"replayed after: {row.dead_letter_reason}" if row.dead_letter_reason else None)
    return None


def delivery_of(row: DeliveryRow) -> Delivery:
    return Delivery(
        row.event_id,
        row.app_id,
        row.template,
        row.state,
        reason_of(row),
        row.attempts,
        row.at,
        row.event_type,
        row.recipient,
    )
