"""The Users schema pages of an app: its columns and the form that adds one; a column's page with
the form that changes whether it is required and its max length, and the one that makes it the
identity. Refused input is shown next to its field, nothing changed."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SESSIONS
from userreg.console.rules.schema import is_checked, parse_column_type, parse_max_length
from userreg.console.service.schema import Schema
from userreg.console.views.common import actor, posted, render, see_other
from userreg.registration.operations import PROPERTY_RULES
from userreg.shared.db.models import ColumnType
from userreg.shared.schema_changes import ColumnRefused, SchemaChangeRefused

SCHEMA = web.AppKey("console_schema", Schema)
# What a page says after the change it was redirected to (fixed texts: nothing of the query is shown).
NOTICES = {
    "added": "The column was added.",
    "changed": "The column was changed.",
    "identity": "The identity column was changed; every user was re-keyed by it.",
}
TYPES = [column_type.value for column_type in ColumnType]


def build(app: web.Application) -> None:
    app[SCHEMA] = Schema(app[SESSIONS], PROPERTY_RULES)


def _app_id(request: web.Request) -> str:
    return request.match_info["app_id"]


def _errors(refused: SchemaChangeRefused) -> dict[str, str]:
    """The message by the field it goes next to ("form" for the form as a whole)."""
    return {refused.field if isinstance(refused, ColumnRefused) else "form": str(refused)}


async def schema_page(
    request: web.Request, *, status: int = 200, form: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> web.Response:
    page = await request.app[SCHEMA].page(_app_id(request))
    return render(
        request,
        "schema.html",
        status=status,
        app=page.app,
        columns=page.columns,
        types=TYPES,
        form=form or {"name": "", "type": "STRING", "required": "", "max_length": ""},
        errors=errors or {},
        notice=NOTICES.get(request.query.get("notice", "")),
    )


async def show_schema(request: web.Request) -> web.Response:
    return await schema_page(request)


async def add_column(request: web.Request) -> web.Response:
    name, type_, required, max_length = await posted(request, "name", "type", "required", "max_length")
    form = {"name": name, "type": type_, "required": required, "max_length": max_length}
    try:
        await request.app[SCHEMA].add(
            actor(request),
            _app_id(request),
            name.strip(),
            parse_column_type(type_),
            required=is_checked(required),
            max_length=parse_max_length(max_length),
        )
    except SchemaChangeRefused as refused:
        return await schema_page(request, status=400, form=form, errors=_errors(refused))
    see_other(f"/apps/{_app_id(request)}/schema?notice=added")


async def column_page(
    request: web.Request, *, status: int = 200, form: dict[str, str] | None = None, errors: dict[str, str] | None = None
) -> web.Response:
    try:
        app, column = await request.app[SCHEMA].column(_app_id(request), request.match_info["column"])
    except SchemaChangeRefused:
        raise web.HTTPNotFound() from None
    if form is None:
        form = {
            "required": "on" if column.required else "",
            "max_length": "" if column.max_length is None else str(column.max_length),
        }
    return render(request, "schema_column.html", status=status, app=app, column=column, form=form, errors=errors or {})


async def show_column(request: web.Request) -> web.Response:
    return await column_page(request)


async def change_column(request: web.Request) -> web.Response:
    required, max_length = await posted(request, "required", "max_length")
    form = {"required": required, "max_length": max_length}
    try:
        await request.app[SCHEMA].change(
            actor(request),
            _app_id(request),
            request.match_info["column"],
            required=is_checked(required),
            max_length=parse_max_length(max_length),
        )
    except SchemaChangeRefused as refused:
        return await column_page(request, status=400, form=form, errors=_errors(refused))
    see_other(f"/apps/{_app_id(request)}/schema?notice=changed")


async def make_identity(request: web.Request) -> web.Response:
    try:
        await request.app[SCHEMA].make_identity(actor(request), _app_id(request), request.match_info["column"])
    except SchemaChangeRefused as refused:
        return await column_page(request, status=400, errors={"identity": str(refused)})
    see_other(f"/apps/{_app_id(request)}/schema?notice=identity")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/apps/{app_id}/schema", show_schema, name="schema")
    router.add_post("/apps/{app_id}/schema", add_column, name="schema_add")
    router.add_get("/apps/{app_id}/schema/{column}", show_column, name="schema_column")
    router.add_post("/apps/{app_id}/schema/{column}", change_column, name="schema_change")
    router.add_post("/apps/{app_id}/schema/{column}/identity", make_identity, name="schema_identity")
