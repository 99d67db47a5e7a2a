"""The mailer's logs: what it writes while handling an event names the event and its app; its ops
server writes an access line per request with the request id it sends back."""

from __future__ import annotations

import aiohttp

from tests.integration.mailer.helpers import make_event
from tests.support.logs import json_lines
from tests.support.polling import eventually
from userreg.shared.runtime.access import REQUEST_ID_HEADER


async def test_the_lines_of_an_event_name_it_and_its_app_and_never_its_link(mailer, publish, inbox, make_app):
    app = await make_app(email_confirmation_required=True)
    event = make_event(app)
    token = event.confirmation.url.rsplit("/", 1)[1]
    with json_lines("mailer") as lines:
        await publish(event)
        await inbox.wait_for(lambda message: message.recipients == [event.user.email])
        sent = await eventually(lambda: [line for line in lines.all() if line["message"].startswith("sent ")])
    assert (sent[0]["event_id"], sent[0]["app_id"], sent[0]["service"]) == (event.id, app.app_id, "mailer")
    assert "request_id" not in sent[0]
    assert token not in lines.text


async def test_the_ops_server_writes_an_access_line_per_request(mailer):
    with json_lines("mailer") as lines:
        async with aiohttp.ClientSession() as http:
            for path in ("/health", "/ready", "/metrics"):
                async with http.get(mailer.make_url(path), headers={REQUEST_ID_HEADER: f"ops{path[1:]}"}) as answer:
                    assert answer.status == 200 and answer.headers[REQUEST_ID_HEADER] == f"ops{path[1:]}"
    assert [(line["path"], line["request_id"], line["level"]) for line in lines.access()] == [
        ("/health", "opshealth", "DEBUG"),
        ("/ready", "opsready", "DEBUG"),
        ("/metrics", "opsmetrics", "DEBUG"),
    ]
