"""A request id ties a client's failed request to the service's log lines about it: an unexpected
error is answered with the request id as its reference, and logged, as JSON, with its traceback in
a field and the request it happened in."""

from __future__ import annotations

from tests.support.logs import json_lines
from userreg.shared.runtime.access import REQUEST_ID_HEADER


async def test_an_unexpected_error_names_the_request_id_in_its_answer_and_its_lines(api_for, unique_email, monkeypatch):
    from userreg.registration import repository

    api = await api_for(email_confirmation_required=True)
    real = repository.outbox_row

    def broken(event):
        row = real(event)
        row.event_id = "not-a-uuid"  # PostgreSQL refuses it: an error nobody planned for
        return row

    monkeypatch.setattr(repository, "outbox_row", broken)
    with json_lines("registration") as lines:
        async with api.client.post(
            api.path("/users/register"),
            headers={REQUEST_ID_HEADER: "oops-1"},
            json={"email": unique_email(), "password": "hunter2-secret"},
        ) as response:
            body = await response.json()
            assert (response.status, body["code"]) == (500, 3021)
            assert response.headers[REQUEST_ID_HEADER] == "oops-1"
    assert body["message"] == "Unexpected server error (reference oops-1)"
    [failure] = [line for line in lines.all() if line["level"] == "ERROR"]
    assert failure["request_id"] == "oops-1" and failure["app_id"] == api.app.app_id
    assert "Traceback" in failure["exception"] and "(reference oops-1)" in failure["message"]
    [access] = lines.access()
    assert (access["request_id"], access["status"]) == ("oops-1", 500)
    for secret in ("$argon2id$", "/confirm/", "hunter2-secret", api.app.rest_api_key):
        assert secret not in lines.text
