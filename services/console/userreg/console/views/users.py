"""The Users pages of an app: the list (search by identity, 25 a page), the create form, one user
(properties, status, created, last login, sessions) with its actions: enable/disable, resend the
confirmation email, delete (after a confirmation page). A refusal of the registration's rules is
shown with its message and code; nothing changed."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import REGISTRAR, SESSIONS
from userreg.console.rules.users import PASSWORD, page_number, search_text, shown_properties
from userreg.console.service.users import PropertiesRefused, UserMissing, Users
from userreg.console.views.common import actor, posted, posted_form, render, see_other
from userreg.registration.operations import ApiError
from userreg.shared.db.models import UserStatus

USERS = web.AppKey("console_users", Users)
# What a page says after the change it was redirected to (fixed texts: nothing of the query is shown).
NOTICES = {
    "created": "The user was created.",
    "created-pending": "The user was created; a confirmation email is on its way.",
    "enabled": "The user is enabled.",
    "disabled": "The user is disabled; its sessions were ended.",
    "unchanged": "The user already had that status.",
    "resent": "A new confirmation email is on its way.",
    "deleted": "The user was deleted.",
}
TARGETS = {"ENABLED": UserStatus.ENABLED, "DISABLED": UserStatus.DISABLED}


def build(app: web.Application) -> None:
    app[USERS] = Users(app[SESSIONS], app[REGISTRAR])


def refusal(error: ApiError) -> str:
    return f"{error.message} (code {error.code})"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["app_id"], request.match_info.get("object_id", "")


def _notice(request: web.Request) -> str | None:
    return NOTICES.get(request.query.get("notice", ""))


async def users_page(request: web.Request) -> web.Response:
    query = search_text(request.query.get("q"))
    number = page_number(request.query.get("page"))
    page = await request.app[USERS].page(request.match_info["app_id"], query, number)
    return render(request, "users.html", app=page.app, page=page, notice=_notice(request))


async def new_user_page(
    request: web.Request,
    *,
    status: int = 200,
    fields: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
) -> web.Response:
    app, columns = await request.app[USERS].form(request.match_info["app_id"])
    shown = {name: value for name, value in (fields or {}).items() if name != PASSWORD}
    return render(
        request,
        "user_new.html",
        status=status,
        app=app,
        columns=columns,
        fields=shown,
        errors=errors or {},
        error=error,
    )


async def show_new_user(request: web.Request) -> web.Response:
    return await new_user_page(request)


async def create_user(request: web.Request) -> web.Response:
    app_id, _ = _ids(request)
    fields = await posted_form(request)
    try:
        user = await request.app[USERS].create(actor(request), app_id, fields)
    except PropertiesRefused as refused:
        return await new_user_page(request, status=400, fields=fields, errors=refused.errors)
    except ApiError as error:
        return await new_user_page(
            request, status=400 if error.http_status < 500 else 503, fields=fields, error=refusal(error)
        )
    notice = "created-pending" if user.status is UserStatus.EMAIL_CONFIRMATION_PENDING else "created"
    see_other(f"/apps/{app_id}/users/{user.object_id}?notice={notice}")


async def user_page(request: web.Request, *, status: int = 200, error: str | None = None) -> web.Response:
    app_id, object_id = _ids(request)
    try:
        details = await request.app[USERS].details(app_id, object_id)
    except UserMissing:
        raise web.HTTPNotFound() from None
    return render(
        request,
        "user.html",
        status=status,
        app=details.app,
        details=details,
        properties=shown_properties(details.user.properties),
        error=error,
        notice=None if error else _notice(request),
    )


async def show_user(request: web.Request) -> web.Response:
    return await user_page(request)


async def set_status(request: web.Request) -> web.Response:
    app_id, object_id = _ids(request)
    [raw] = await posted(request, "status")
    target = TARGETS.get(raw)
    if target is None:
        return await user_page(request, status=400, error="Choose ENABLED or DISABLED.")
    try:
        changed = await request.app[USERS].set_status(actor(request), app_id, object_id, target)
    except ApiError as error:
        return await _refused(request, error)
    notice = ("enabled" if target is UserStatus.ENABLED else "disabled") if changed else "unchanged"
    see_other(f"/apps/{app_id}/users/{object_id}?notice={notice}")


async def resend_confirmation(request: web.Request) -> web.Response:
    app_id, object_id = _ids(request)
    try:
        await request.app[USERS].resend_confirmation(actor(request), app_id, object_id)
    except UserMissing:
        raise web.HTTPNotFound() from None
    except ApiError as error:
        return await _refused(request, error)
    see_other(f"/apps/{app_id}/users/{object_id}?notice=resent")


async def delete_page(request: web.Request) -> web.Response:
    app_id, object_id = _ids(request)
    try:
        details = await request.app[USERS].details(app_id, object_id)
    except UserMissing:
        raise web.HTTPNotFound() from None
    return render(request, "user_delete.html", app=details.app, details=details)


async def delete_user(request: web.Request) -> web.Response:
    app_id, object_id = _ids(request)
    try:
        await request.app[USERS].delete(actor(request), app_id, object_id)
    except ApiError as error:
        if error.http_status == 404:
            raise web.HTTPNotFound() from None
        raise
    see_other(f"/apps/{app_id}/users?notice=deleted")


async def _refused(request: web.Request, error: ApiError) -> web.Response:
    """The user's page with the registration's refusal (its own HTTP status)."""
    if error.http_status == 404:
        raise web.HTTPNotFound()
    return await user_page(request, status=error.http_status, error=refusal(error))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/apps/{app_id}/users", users_page, name="users")
    router.add_post("/apps/{app_id}/users", create_user, name="user_create")
    router.add_get("/apps/{app_id}/users/new", show_new_user, name="user_new")
    router.add_get("/apps/{app_id}/users/{object_id}", show_user, name="user")
    router.add_post("/apps/{app_id}/users/{object_id}/status", set_status, name="user_status")
    router.add_post("/apps/{app_id}/users/{object_id}/resend", resend_confirmation, name="user_resend")
    router.add_get("/apps/{app_id}/users/{object_id}/delete", delete_page, name="user_delete_page")
    router.add_post("/apps/{app_id}/users/{object_id}/delete", delete_user, name="user_delete")
