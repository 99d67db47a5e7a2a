"""The operations endpoints, as every service answers them (public: no sign-in). Ready: the
database answers through the console's own engine."""

from __future__ import annotations

from aiohttp import web

from userreg.console.keys import ENGINE
from userreg.shared.runtime import ops

health = ops.health
ready = ops.ready_view(database=ops.reachable(ops.select_one(ENGINE)))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/health", health, name="health")
    router.add_get("/ready", ready, name="ready")
