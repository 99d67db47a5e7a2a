"""What every service's `/ready` must do about the broker, checked through a proxy the test cuts:
it reads the state of the service's own broker connection, opens none of its own, and follows
the cut and the reconnection."""

from __future__ import annotations

import aiohttp

from tests.support.polling import eventually
from tests.support.tcp_proxy import TcpProxy

PROBES = 200


async def ready(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def ready_is(http: aiohttp.ClientSession, url: str, status: int) -> bool:
    return (await ready(http, url))[0] == status


async def ready_follows_the_broker(http: aiohttp.ClientSession, url: str, proxy: TcpProxy, part: str) -> None:
    """`url` is the service's `/ready`, `proxy` stands between the service and RabbitMQ, and the
    service's `part` (its outbox relay, its consumer) holds the one connection through it."""

    await eventually(lambda: ready_is(http, url, 200), what="the service to be ready")
    assert proxy.accepted == 1  # the part's connection, and nothing else
    for _ in range(PROBES):
        assert (await ready(http, url))[0] == 200
    assert proxy.accepted == 1, "a readiness probe opened a broker connection"

    await proxy.cut()
    await eventually(lambda: ready_is(http, url, 503), timeout=10, what="/ready to see the cut")
    assert await ready(http, url) == (503, {"status": "unavailable", "database": "ok", "broker": "unreachable"})
    await proxy.restore()
    await eventually(lambda: ready_is(http, url, 200), timeout=30, what=f"the {part} to reconnect")
    reconnected = proxy.accepted
    for _ in range(PROBES):
        assert (await ready(http, url))[0] == 200
    assert proxy.accepted == reconnected, "a readiness probe opened a broker connection"
