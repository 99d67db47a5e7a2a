"""What every page area's views use: the signed-in operator, a page rendered in the base layout,
the posted form's fields, and redirects. (Sign-in and the POST checks happen before a view runs:
`middleware.signed_in`.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from aiohttp import web
from markupsafe import Markup, escape

from userreg.console.auth import UNREADABLE_FORM
from userreg.console.keys import OPERATOR, PAGES
from userreg.console.rules.csrf import FIELD, csrf_token
from userreg.console.service.operators import SignedInOperator
from userreg.shared.audit import operator_actor


def operator(request: web.Request) -> SignedInOperator:
    """The signed-in operator (every view but the public ones runs for one)."""
    return request[OPERATOR]


def actor(request: web.Request) -> str:
    """Who the audit log names for this request's changes."""
    return operator_actor(operator(request).email)


def render(
    request: web.Request, template: str, *, status: int = 200, csp: Mapping[str, str] | None = None, **context: Any
) -> web.Response:
    """`template` (which extends base.html) with `context`, plus what the layout needs: the
    operator, the CSRF field (`{{ csrf_field }}` in every form), the nonce (`csp_nonce`) and the
    current path. Pass `app=` (an `App`, or anything with `app_id` and `name`) on a page of one app:
    the navigation then shows that app's pages. `csp` replaces single directives of the page's CSP."""
    signed_in = request.get(OPERATOR)
    token = csrf_token(signed_in.session_token) if signed_in is not None else ""
    context.setdefault("app", None)
    layout = {
        "operator": signed_in,
        "csrf_token": token,
        "csrf_field": Markup(f'<input type="hidden" name="{FIELD}" value="{escape(token)}">'),
        "path": request.path,
    }
    return request.app[PAGES].response(template, {**layout, **context}, status=status, csp=csp)


async def posted(request: web.Request, *names: str) -> list[str]:
    """The form's text fields of these names ("" for one that is absent, a file, or unreadable)."""
    try:
        form = await request.post()
    except UNREADABLE_FORM:
        return ["" for _ in names]
    return [value if isinstance(value := form.get(name), str) else "" for name in names]


async def posted_form(request: web.Request) -> dict[str, str]:
    """Every text field of the posted form (the first value of each name)."""
    try:
        form = await request.post()
    except UNREADABLE_FORM:
        return {}
    fields: dict[str, str] = {}
    for name, value in form.items():
        if isinstance(value, str):
            fields.setdefault(name, value)
    return fields


def see_other(location: str) -> NoReturn:
    """After a POST: the browser GETs `location` (so reloading does not post again)."""
    raise web.HTTPSeeOther(location=location)
