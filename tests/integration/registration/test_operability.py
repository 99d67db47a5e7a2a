"""Health, readiness, metrics, the OpenAPI document, and shutdown."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

from tests.integration.registration.client import Api
from tests.support.polling import eventually, free_port
from tests.support.tcp_proxy import TcpProxy
from userreg.registration import errors
from userreg.registration.app import create_app
from userreg.registration.openapi import document
from userreg.registration.routes import ROUTES


async def test_health(client):
    async with client.get("/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok", "version": metadata.version("userreg-registration")}


async def _ready(client) -> tuple[int, dict]:
    async with client.get("/ready") as response:
        return response.status, await response.json()


async def _backlog(client) -> float:
    async with client.get("/metrics") as response:
        text = await response.text()
    return float(re.search(r"^userreg_registration_outbox_backlog (\S+)$", text, re.M).group(1))


async def test_ready_when_database_and_broker_answer(client):
    # Ready once the outbox relay is connected, which takes a moment after the start.
    await eventually(lambda: _is_ready(client), what="the service to be ready")
    assert await _ready(client) == (200, {"status": "ready", "database": "ok", "broker": "ok"})


async def _is_ready(client) -> bool:
    return (await _ready(client))[0] == 200


async def _is_not_ready(client) -> bool:
    return (await _ready(client))[0] == 503


# aiormq does not close the StreamWriter of a connection the broker dropped (here: the cut); the
# garbage collector does, with a ResourceWarning. Collected inside this test, it is ignored here only.
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_ready_reads_the_relays_connection_and_opens_none_of_its_own(start_service, settings):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        client = await start_service(amqp_url=proxy.url_through(settings.amqp_dsn))
        await eventually(lambda: _is_ready(client), what="the service to be ready")
        assert proxy.accepted == 1  # the outbox relay's connection, and nothing else
        for _ in range(200):
            assert (await _ready(client))[0] == 200
        assert proxy.accepted == 1, "a readiness probe opened a broker connection"

        await proxy.cut()
        await eventually(lambda: _is_not_ready(client), timeout=10, what="/ready to see the cut")
        assert await _ready(client) == (503, {"status": "unavailable", "database": "ok", "broker": "unreachable"})

        await proxy.restore()
        await eventually(lambda: _is_ready(client), timeout=30, what="the relay to reconnect")
        reconnected = proxy.accepted
        for _ in range(200):
            assert (await _ready(client))[0] == 200
        assert proxy.accepted == reconnected, "a readiness probe opened a broker connection"


async def test_not_ready_without_the_broker(start_service):
    client = await start_service(amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    async with client.get("/ready") as response:
        assert response.status == 503
        assert await response.json() == {"status": "unavailable", "database": "ok", "broker": "unreachable"}


async def test_not_ready_without_the_database(start_service):
    client = await start_service(database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x")
    async with client.get("/ready") as response:
        assert response.status == 503
        assert (await response.json())["database"] == "unreachable"


@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
async def test_the_outbox_backlog_is_the_span_of_the_outbox_ids(start_service, settings, make_app, unique_email):
    async with TcpProxy.in_front_of(settings.amqp_dsn, 5672) as proxy:
        client = await start_service(amqp_url=proxy.url_through(settings.amqp_dsn), outbox_poll_seconds=0.2)
        api = Api(client, await make_app())
        # The relay publishes whatever is in the outbox (left by earlier tests too): then it is empty.
        await eventually(lambda: _backlog_is(client, 0), timeout=30, what="an empty outbox")
        await proxy.cut()
        await eventually(lambda: _is_not_ready(client), timeout=10, what="the relay to see the cut")
        for _ in range(5):
            assert (await api.register({"email": unique_email(), "password": "pw"}))[0] == 200
        assert await _backlog(client) == 5
        await proxy.restore()
        await eventually(lambda: _backlog_is(client, 0), timeout=60, what="the relay to catch up")


async def _backlog_is(client, value: float) -> bool:
    return await _backlog(client) == value


async def test_metrics_count_requests_by_route_and_code_and_show_the_outbox_backlog(api_for, unique_email):
    api = await api_for()
    email = unique_email()
    await api.register({"email": email, "password": "pw"})
    await api.register({"email": email, "password": "pw"})
    async with api.client.get("/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    route = "/{appId}/{apiKey}/users/register"
    counted = re.search(
        r'userreg_registration_requests_total\{code="3033",method="POST",'
        rf'route="{re.escape(route)}",status="409"\}} (\d+)',
        text,
    )
    assert counted and float(counted.group(1)) >= 1
    assert f'userreg_registration_request_duration_seconds_bucket{{le="0.1",route="{route}"}}' in text
    assert re.search(r"^userreg_registration_outbox_backlog \d+(\.\d+)?$", text, re.M)
    assert "userreg_outbox_published_total" in text  # the relay's own counters


async def test_the_openapi_document_describes_every_route_the_router_serves(client):
    async with client.get("/openapi.json") as response:
        assert response.status == 200
        doc = await response.json()
    assert doc == document()
    assert doc["openapi"].startswith("3.")
    served = {(route.method, route.resource.canonical) for route in create_app_routes()}
    documented = {(method.upper(), path) for path, operations in doc["paths"].items() for method in operations}
    assert served == documented
    register = doc["paths"]["/{appId}/{apiKey}/users/register"]["post"]
    assert set(register["responses"]) >= {"200", "400", "401", "403", "409", "413", "415", "500", "502", "503"}
    for code in (2002, 3009, 3010, 3011, 3012, 3013, 3014, 3021, 3033, 3038, 3039, 3040, 3041, 3043, 8000):
        assert any(str(code) in answer["description"] for answer in register["responses"].values()), code
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            for answer in operation["responses"].values():
                assert "description" in answer
            names = set(re.findall(r"{(\w+)}", path))
            assert names == {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
    logout = doc["paths"]["/{appId}/{apiKey}/users/logout"]["get"]
    assert {"name": "user-token", "in": "header"}.items() <= logout["parameters"][-1].items()
    assert "3064" in logout["responses"]["401"]["description"]


def create_app_routes():
    from userreg.shared.settings import Settings

    return create_app(Settings()).router.routes()


def test_every_error_code_is_one_class():
    codes = [cls.code for cls in errors.ERRORS]
    assert len(codes) == len(set(codes))
    assert {
        2002,
        3003,
        3006,
        3009,
        3010,
        3011,
        3012,
        3013,
        3014,
        3020,
        3021,
        3029,
        3033,
        3038,
        3039,
        3040,
        3041,
        3043,
        3054,
        3064,
        3090,
        3102,
        3103,
        3104,
        8000,
        9000,
        9001,
        9002,
        9003,
        9004,
        9005,
        9006,
        9007,
        9008,
        9009,
    } == set(codes)
    for route in ROUTES:
        for spec in route.errors:
            cls = spec[0] if isinstance(spec, tuple) else spec
            assert cls in errors.ERRORS


async def test_unknown_paths_answer_the_envelope_at_any_depth(client):
    for path in ("/nope", "/a/b/c/d/e/f/g", "/health/x"):
        async with client.post(path) as response:
            assert response.status in (404, 405)
            body = await response.json()
            assert set(body) == {"code", "message"} and body["code"] == 9000


async def test_errors_never_leak_internals_for_odd_input(api_for):
    api: Api = await api_for()
    odd = ["\u0000", "%00", "x" * 5000, "😀", "'; DROP TABLE users; --"]
    for value in odd:
        for method, path in (("POST", f"/users/resendconfirmation/{value}"), ("PUT", f"/users/{value}/status")):
            status, body = await api.call(method, path, key=api.app.server_api_key, json={"userStatus": "ENABLED"})
            assert status < 500, (value, body)
            assert set(body) == {"code", "message"}
        status, body = await api.login(value, value)
        assert status < 500 and set(body) == {"code", "message"}
