"""An app's User Registration page (services/console/README.md, as the seed's "Users → User Registration"): the
Registration and Email confirmation toggles, then every other setting; one form, saved whole."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SESSIONS
from userreg.console.rules.setting_fields import setting_fields
from userreg.console.service.user_registration import RegistrationSettings, UserRegistration
from userreg.console.views.common import actor, posted_form, render, see_other
from userreg.registration.operations import PROPERTY_RULES

USER_REGISTRATION = web.AppKey("user_registration", UserRegistration)
NOTICES = {"saved": "Saved. The change applies to the next API request.", "unchanged": "Nothing changed."}


def build(app: web.Application) -> None:
    app[USER_REGISTRATION] = UserRegistration(app[SESSIONS], PROPERTY_RULES)


def _page(
    request: web.Request, current: RegistrationSettings, *, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    fields = setting_fields(current.values, errors, identity_choices=current.identity_choices)
    return render(
        request,
        "user_registration.html",
        status=status,
        app=current.app,
        toggles=fields[:2],
        others=fields[2:],
        errors=errors or {},
        notice=NOTICES.get(request.query.get("notice", "")) if status == 200 else None,
    )


async def settings_page(request: web.Request) -> web.Response:
    return _page(request, await request.app[USER_REGISTRATION].read(request.match_info["app_id"]))


async def save_settings(request: web.Request) -> web.Response:
    saved = await request.app[USER_REGISTRATION].save(
        actor(request), request.match_info["app_id"], await posted_form(request)
    )
    if saved.errors:
        return _page(request, saved.settings, errors=saved.errors, status=400)
    see_other(f"/apps/{saved.settings.app.app_id}/registration?notice={'saved' if saved.changes else 'unchanged'}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/apps/{app_id}/registration", settings_page, name="user_registration")
    router.add_post("/apps/{app_id}/registration", save_settings, name="save_user_registration")
