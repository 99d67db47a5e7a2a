"""The audit log page: `?app=<appId>` filters, `?before=<entry id>` pages on to older entries."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SESSIONS
from userreg.console.rules.audit_view import before_id
from userreg.console.service.audit_log import AuditLog
from userreg.console.views.common import render

AUDIT_LOG = web.AppKey("audit_log", AuditLog)


def build(app: web.Application) -> None:
    app[AUDIT_LOG] = AuditLog(app[SESSIONS])


async def audit_page(request: web.Request) -> web.Response:
    app_id = request.query.get("app", "").strip()[:36] or None
    page = await request.app[AUDIT_LOG].page(app_id, before_id(request.query.get("before")))
    return render(request, "audit.html", page=page, request_before="before" in request.query)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/audit", audit_page, name="audit")
