"""The System page: the services' health and readiness, the outbox backlog, the queues."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import SERVICE_URLS, SESSIONS, SETTINGS, TOPOLOGY
from userreg.console.service.system import System
from userreg.console.views.common import render

SYSTEM = web.AppKey("system", System)


def build(app: web.Application) -> None:
    app[SYSTEM] = System(app[SESSIONS], app[SERVICE_URLS], app[SETTINGS].amqp_dsn, app[TOPOLOGY])


async def system_page(request: web.Request) -> web.Response:
    return render(request, "system.html", state=await request.app[SYSTEM].state())


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/system", system_page, name="system")
