"""The Apps pages: the list with user counts and the create form; an app's keys (shown once, in the
answer to the form that made them: creating the app or rotating its keys; the keys page itself
only rotates them); deleting an app with its name typed again.

New keys are never kept for a later request (no redirect after those two POSTs): whichever
replica answers the form shows them, and nothing holds them afterwards. The page is never cached
(`Cache-Control: no-store`, as every page), so going back to it shows no keys either."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SESSIONS
from userreg.console.rules.key_stamps import keys_stamp
from userreg.console.service.apps import Apps, KeysChanged, NameMismatch, NameTaken, NewKeys, SettingRefused
from userreg.console.views.common import actor, operator, posted, render, see_other
from userreg.shared.db.models import App

APPS = web.AppKey("console_apps", Apps)
# What the list says after a change it was redirected to (fixed texts: nothing of the query is shown).
NOTICES = {"deleted": "The app was deleted."}


def build(app: web.Application) -> None:
    app[APPS] = Apps(app[SESSIONS])


async def _list(request: web.Request, *, status: int = 200, name: str = "", error: str | None = None) -> web.Response:
    return render(
        request,
        "apps.html",
        status=status,
        apps=await request.app[APPS].summaries(),
        name=name,
        error=error,
        notice=NOTICES.get(request.query.get("notice", "")),
    )


def _keys_page(
    request: web.Request,
    app: App,
    *,
    keys: NewKeys | None = None,
    new_app: bool = False,
    status: int = 200,
    error: str | None = None,
) -> web.Response:
    """The keys page: `keys` once, just made; without them the rotate form, stamped with the
    app's current keys."""
    stamp = keys_stamp(operator(request).session_token, app.rest_api_key)
    return render(
        request, "app_keys.html", status=status, app=app, keys=keys, new_app=new_app, stamp=stamp, error=error
    )


async def apps_page(request: web.Request) -> web.Response:
    return await _list(request)


async def create_app(request: web.Request) -> web.Response:
    [name] = await posted(request, "name")
    try:
        app, keys = await request.app[APPS].create(actor(request), name)
    except (SettingRefused, NameTaken) as refused:
        return await _list(request, status=400, name=name, error=str(refused))
    return _keys_page(request, app, keys=keys, new_app=True)


async def keys_page(request: web.Request) -> web.Response:
    """The form that rotates the keys (they are shown only in the answer to it)."""
    return _keys_page(request, await request.app[APPS].get(request.match_info["app_id"]))


async def rotate_keys(request: web.Request) -> web.Response:
    [stamp] = await posted(request, "keys_stamp")
    apps = request.app[APPS]
    try:
        app, keys = await apps.rotate_keys(
            actor(request), request.match_info["app_id"], operator(request).session_token, stamp
        )
    except KeysChanged:
        app = await apps.get(request.match_info["app_id"])
        return _keys_page(
            request,
            app,
            status=409,
            error="Nothing was rotated: the keys changed since this page was shown (it was old, "
            "or it was reloaded after a rotation). The keys shown last are the app's keys. "
            "Rotate again below if you need new ones.",
        )
    return _keys_page(request, app, keys=keys)


async def delete_page(request: web.Request) -> web.Response:
    app = await request.app[APPS].get(request.match_info["app_id"])
    return render(request, "app_delete.html", app=app, error=None)


async def delete_app(request: web.Request) -> web.Response:
    [typed] = await posted(request, "confirm_name")
    apps = request.app[APPS]
    try:
        await apps.delete(actor(request), request.match_info["app_id"], typed)
    except NameMismatch:
        app = await apps.get(request.match_info["app_id"])
        return render(
            request,
            "app_delete.html",
            status=400,
            app=app,
            error="The name you typed is not this app's name. Nothing was deleted.",
        )
    see_other("/apps?notice=deleted")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/apps", apps_page, name="apps")
    router.add_post("/apps", create_app, name="create_app")
    router.add_get("/apps/{app_id}/keys", keys_page, name="app_keys")
    router.add_post("/apps/{app_id}/keys", rotate_keys, name="rotate_keys")
    router.add_get("/apps/{app_id}/delete", delete_page, name="delete_app_page")
    router.add_post("/apps/{app_id}/delete", delete_app, name="delete_app")
