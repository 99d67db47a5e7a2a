"""The Deliveries pages: the emails of every app (`/deliveries`, filtered by app and by state) and
an app's own (`/apps/{appId}/deliveries`, filtered by state), newest first, a page at a time with
links to older and newer pages (no script needed), each email with its recipient, state and
reason; on an app's page also the dead letters waiting in the dead-letter queue, each with a
Replay button, and one to replay them all."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SESSIONS, SETTINGS
from userreg.console.rules.deliveries import STATES, delivery_query, listing_url
from userreg.console.service.deliveries import BrokerUnavailable, Deliveries, Emails
from userreg.console.views.common import actor, posted, render, see_other
from userreg.mailer.operations import list_dead_letters, replay

DELIVERIES = web.AppKey("console_deliveries", Deliveries)
NOTICES = {
    "replayed": "The dead letters were sent back to the mailer; a running mailer sends them now.",
    "replayed-one": "The dead letter was sent back to the mailer; a running mailer sends it now.",
    "none": "There was nothing to replay (it may have been replayed already).",
}


def build(app: web.Application) -> None:
    app[DELIVERIES] = Deliveries(app[SESSIONS], app[SETTINGS], list_dead_letters, replay)


def _pager(path: str, emails: Emails, *, app_in_query: bool) -> tuple[str | None, str | None]:
    """The links to the older and the newer page (None where there is none)."""
    number = emails.query.page
    older = listing_url(path, emails.query, number + 1, app_in_query=app_in_query) if emails.has_older else None
    newer = listing_url(path, emails.query, number - 1, app_in_query=app_in_query) if number > 1 else None
    return older, newer


async def every_app_page(request: web.Request) -> web.Response:
    emails = await request.app[DELIVERIES].emails(delivery_query(request.query))
    older, newer = _pager(request.path, emails, app_in_query=True)
    return render(request, "deliveries_all.html", emails=emails, states=STATES, older_url=older, newer_url=newer)


async def deliveries_page(request: web.Request, *, status: int = 200, error: str | None = None) -> web.Response:
    app_id = request.match_info["app_id"]
    page = await request.app[DELIVERIES].page(app_id, delivery_query(request.query, app_id=app_id))
    older, newer = _pager(f"/apps/{page.app.app_id}/deliveries", page.emails, app_in_query=False)
    return render(
        request,
        "deliveries.html",
        status=status,
        app=page.app,
        page=page,
        emails=page.emails,
        states=STATES,
        older_url=older,
        newer_url=newer,
        error=error,
        notice=None if error else NOTICES.get(request.query.get("notice", "")),
    )


async def show_deliveries(request: web.Request) -> web.Response:
    return await deliveries_page(request)


async def replay_dead_letters(request: web.Request) -> web.Response:
    """One dead letter (`event_id`), or all of the app's (no `event_id`)."""
    app_id = request.match_info["app_id"]
    [event_id] = await posted(request, "event_id")
    try:
        replayed = await request.app[DELIVERIES].replay(actor(request), app_id, event_id.strip() or None)
    except BrokerUnavailable as unavailable:
        return await deliveries_page(request, status=503, error=f"Nothing was replayed: {unavailable}")
    notice = "none" if not replayed else "replayed-one" if event_id.strip() else "replayed"
    see_other(f"/apps/{app_id}/deliveries?notice={notice}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/deliveries", every_app_page, name="deliveries_every_app")
    router.add_get("/apps/{app_id}/deliveries", show_deliveries, name="deliveries")
    router.add_post("/apps/{app_id}/deliveries/replay", replay_dead_letters, name="deliveries_replay")
