"""`userreg-registration` as an operator runs it with LOG_FORMAT=json: everything it writes is one
JSON object per line, its access log included, and no password in any of it."""

from __future__ import annotations

import json
import uuid

import aiohttp

from tests.support.polling import free_port
from tests.support.processes import ServiceProcess
from userreg.shared.runtime.access import REQUEST_ID_HEADER

PASSWORD = "json log passphrase 7"


async def test_the_process_writes_json_lines(settings, make_app, unique_email):
    port = free_port()
    service = ServiceProcess(
        f"registration-json-{uuid.uuid4().hex[:8]}",
        "userreg-registration",
        {
            "DATABASE_URL": settings.database_dsn,
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": settings.events_exchange,
            "BIND_HOST": "127.0.0.1",
            "REGISTRATION_PORT": str(port),
            "HASH_WORKERS": "1",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "json",
        },
        health_url=f"http://127.0.0.1:{port}/health",
    )
    await service.start()
    try:
        app = await make_app()
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/{app.app_id}/{app.rest_api_key}/users/register",
                json={"email": unique_email(), "password": PASSWORD},
                headers={REQUEST_ID_HEADER: "process-1"},
            ) as response:
                assert response.status == 200 and response.headers[REQUEST_ID_HEADER] == "process-1"
            async with http.get(f"{base}/docs") as response:
                assert response.status == 200
    finally:
        assert await service.stop(timeout=20) == 0
    written = service.log_path.read_text()
    # (Lines of "---- " are the test harness's own, between the process's lives.)
    lines = [json.loads(line) for line in written.splitlines() if not line.startswith("---- ")]
    assert all(line["service"] == "registration" for line in lines)
    assert any(line["message"].startswith("starting registration service") for line in lines)
    access = [line for line in lines if line["logger"] == "userreg.access"]
    assert [(line["method"], line["path"], line["status"]) for line in access] == [
        ("POST", f"/{app.app_id}/[apiKey]/users/register", 200),
        ("GET", "/docs", 200),
    ]
    assert (access[0]["request_id"], access[0]["app_id"]) == ("process-1", app.app_id)
    assert PASSWORD not in written and app.rest_api_key not in written
