"""The Apps pages: the list with user counts and the create form; an app's keys (shown once after
creating or rotating them; otherwise the rotate form); deleting an app with its name typed again."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SESSIONS
from userreg.console.service.apps import Apps, NameMismatch, NameTaken, SettingRefused
from userreg.console.service.key_reveals import KeyReveals
from userreg.console.views.common import actor, operator, posted, render, see_other

APPS = web.AppKey("console_apps", Apps)
KEY_REVEALS = web.AppKey("key_reveals", KeyReveals)
# What the list says after a change it was redirected to (fixed texts: nothing of the query is shown).
NOTICES = {"deleted": "The app was deleted."}


def build(app: web.Application) -> None:
    app[APPS] = Apps(app[SESSIONS])
    app[KEY_REVEALS] = KeyReveals()


async def _list(request: web.Request, *, status: int = 200, name: str = "", error: str | None = None) -> web.Response:
    return render(request, "apps.html", status=status, apps=await request.app[APPS].summaries(),
                  name=name, error=error, notice=NOTICES.get(request.query.get("notice", "")))


async def apps_page(request: web.Request) -> web.Response:
    return await _list(request)


async def create_app(request: web.Request) -> web.Response:
    [name] = await posted(request, "name")
    try:
        app, keys = await request.app[APPS].create(actor(request), name)
    except (SettingRefused, NameTaken) as refused:
        return await _list(request, status=400, name=name, error=str(refused))
    request.app[KEY_REVEALS].keep(operator(request).session_token, app.app_id, keys)
    see_other(f"/apps/{app.app_id}/keys?new=app")


async def keys_page(request: web.Request) -> web.Response:
    """The keys just made, once; afterwards (and before) the form that rotates them."""
    app = await request.app[APPS].get(request.match_info["app_id"])
    keys = request.app[KEY_REVEALS].take(operator(request).session_token, app.app_id)
    return render(request, "app_keys.html", app=app, keys=keys, new_app=request.query.get("new") == "app")


async def rotate_keys(request: web.Request) -> web.Response:
    app, keys = await request.app[APPS].rotate_keys(actor(request), request.match_info["app_id"])
    request.app[KEY_REVEALS].keep(operator(request).session_token, app.app_id, keys)
    see_other(f"/apps/{app.app_id}/keys")


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
        return render(request, "app_delete.html", status=400, app=app,
                      error="The name you typed is not this app's name. Nothing was deleted.")
    see_other("/apps?notice=deleted")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/apps", apps_page, name="apps")
    router.add_post("/apps", create_app, name="create_app")
    router.add_get("/apps/{app_id}/keys", keys_page, name="app_keys")
    router.add_post("/apps/{app_id}/keys", rotate_keys, name="rotate_keys")
    router.add_get("/apps/{app_id}/delete", delete_page, name="delete_app_page")
    router.add_post("/apps/{app_id}/delete", delete_app, name="delete_app")
