"""Schema-driven fuzzing of every operation of the registration API (docs/api.md, register, issue 5 item 5).

schemathesis takes the service's OpenAPI document (the one it serves, checked below), generates
valid and invalid requests for each operation, sends them to the running service on a real socket
and checks every answer: never a 5xx, every error exactly the `{"code": int, "message": str}`
envelope, and status, content type, headers and body as the document says. A hook puts real
appIds, REST and server keys, identities, objectIds and logins into most cases, so the fuzzer gets
past 2002 and reaches the checks behind it. A Hypothesis test then aims any method, path and body
around the documented ones, where the document has nothing to say but the envelope still holds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, checks
from schemathesis.specs.openapi import checks as openapi_checks

from tests.fuzz.conftest import FULL, PASSWORD, RegistrationWorld, Tally, Tenant, weighted
from userreg.registration.openapi import document

# One worker runs the whole module, so that its request count is one figure.
pytestmark = pytest.mark.xdist_group("fuzz-registration")

# Examples per operation in the fuzzing phase: ~14 operations × this, plus the coverage phase's
# boundary cases, is a few thousand requests in about a minute; USERREG_FULL_FAULTS=1 runs more.
MAX_EXAMPLES = 2000 if FULL else 300
RAW_EXAMPLES = 3000 if FULL else 400
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "', "sqlalchemy", "asyncpg")


def error_envelope(ctx, response, case: Case) -> bool | None:
    """Every non-2xx answer is exactly `{"code": <int>, "message": <str>}`, without a traceback.
    (/ready's 503 is its own documented body, not an error; it cannot happen here anyway.)"""
    if 200 <= response.status_code < 300 or case.operation.path == "/ready":
        return None
    try:
        body = json.loads(response.content)
    except ValueError as error:
        raise AssertionError(f"HTTP {response.status_code} without a JSON body: {response.content[:200]!r}") from error
    assert isinstance(body, dict) and set(body) == {"code", "message"}, f"not the envelope: {body!r}"
    assert type(body["code"]) is int, f"code is not an integer: {body!r}"
    assert isinstance(body["message"], str) and body["message"], f"message is not a string: {body!r}"
    assert not any(marker in body["message"] for marker in TRACEBACK_MARKERS), f"internals leaked: {body!r}"
    return True


def _mostly(real: list[Any], generated: Any) -> st.SearchStrategy:
    """A real value three times in four, else what schemathesis generated."""
    return weighted((3, st.sampled_from(real)), (1, st.just(generated)))


def _variants(value: str) -> list[str]:
    """The value as stored and in other cases (appIds, objectIds and identities ignore case)."""
    return [value, value, value.lower(), value.upper()]


# The operations that read the `user-token` header: most cases carry a real session's.
SESSION_OPERATIONS = ("logout", "updateUser", "readUser", "verifyPassword")


@st.composite
def realistic(draw: st.DrawFn, case: Case, world: RegistrationWorld) -> Case:
    """The case with real values for most of its path parameters and bodies."""
    params = dict(case.path_parameters or {})
    if not params or "appId" not in params or draw(st.integers(0, 9)) == 9:  # some stay as generated
        return case
    tenant: Tenant = draw(st.sampled_from(world.tenants))
    app = tenant.app
    params["appId"] = draw(st.sampled_from(_variants(app.app_id)))
    other_key = world.tenants[(world.tenants.index(tenant) + 1) % len(world.tenants)].app.rest_api_key
    params["apiKey"] = draw(
        st.sampled_from(
            [
                app.server_api_key,
                app.rest_api_key,
                app.server_api_key,
                app.rest_api_key,
                other_key,
                str(params.get("apiKey")),
            ]
        )
    )
    identities = list(tenant.users)
    if "identity" in params and identities:
        real = [variant for identity in identities for variant in _variants(identity)]
        params["identity"] = draw(_mostly(real, params["identity"]))
    if "objectId" in params:
        object_ids = list(tenant.users.values()) + tenant.guests
        if object_ids:
            real = [variant for object_id in object_ids for variant in _variants(object_id)]
            params["objectId"] = draw(_mostly(real, params["objectId"]))
    if "token" in params and tenant.tokens:
        params["token"] = draw(_mostly(tenant.tokens, params["token"]))
    operation = case.operation.definition.raw.get("operationId")
    if operation in SESSION_OPERATIONS and tenant.tokens and draw(st.booleans()):
        case.headers = {**(case.headers or {}), "user-token": draw(st.sampled_from(tenant.tokens))}
    if isinstance(case.body, dict) and draw(st.booleans()):
        if operation == "registerUser":
            email = draw(
                st.one_of(
                    st.uuids().map(lambda u: f"fuzz.{u.hex[:16]}@example.com"),  # a new user: 200
                    st.sampled_from(identities or ["taken@example.com"]),  # an existing one: 3033
                )
            )
            case.body = {**case.body, "email": email, "password": draw(st.text(min_size=1, max_size=40))}
        elif operation == "login" and identities:
            case.body = {
                **case.body,
                "login": draw(st.sampled_from(identities)),
                "password": draw(st.sampled_from([PASSWORD, PASSWORD, "wrong-password"])),
            }
    # Assigned, not changed in place: schemathesis then re-checks whether the case is still
    # schema-invalid (a negative case given real values may have become a valid one).
    case.path_parameters = params
    return case


# What every answer must satisfy. Not `positive_data_acceptance`: the document describes the shape
# of a body, not the rules behind it (a schema-valid body with an invalid email address is a 3040).
CHECKS = [
    checks.not_a_server_error,
    error_envelope,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.response_headers_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.unsupported_method,
    openapi_checks.allow_header_conformance,
]
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {"mode": "all", "max-examples": MAX_EXAMPLES},
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
    }
)
# The document as the service builds it (no I/O); `test_the_served_document_is_the_one_fuzzed` checks
# that the running service serves exactly this. Cases are sent to the running service's socket.
schema = schemathesis.openapi.from_dict(document(), config=CONFIG)


class _Target:
    """The world of the test being run, for the hooks (which schemathesis calls without fixtures)."""

    world: RegistrationWorld | None = None


@pytest.fixture
def target(registration_world: RegistrationWorld):
    _Target.world = registration_world
    yield registration_world
    _Target.world = None


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """One keep-alive client for the cases of an operation (a new connection per case is slow)."""
    with requests.Session() as session:
        yield session


@schema.hook("flatmap_case")
def real_values(ctx, case: Case) -> st.SearchStrategy:
    assert _Target.world is not None, "the target fixture sets the world up"
    return realistic(case, _Target.world)


def _operation_test(operation_id: str):
    """The fuzz test of one operation. One test function per operation, not one `parametrize` over
    the schema: pytest 9 gives all of schemathesis' per-operation items the same node id, and
    pytest-xdist would then run only one of them."""

    @schema.include(operation_id=operation_id).parametrize()
    @settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # the world is shared on purpose
    def test(case: Case, target: RegistrationWorld, tally: Tally, http: requests.Session) -> None:
        response = case.call_and_validate(base_url=target.base_url, session=http, checks=CHECKS)
        phase = case.meta.phase.name.value if case.meta else "explicit"
        tally.record(f"{case.operation.label} ({phase})", response.status_code, _code_of(response))

    return test


OPERATION_IDS = [operation["operationId"] for methods in document()["paths"].values() for operation in methods.values()]
for _operation_id in OPERATION_IDS:  # every operation the document lists, however many it lists
    globals()[f"test_{_operation_id}_answers_within_its_document"] = _operation_test(_operation_id)


def _code_of(response) -> object:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def test_the_served_document_is_the_one_fuzzed(registration_world: RegistrationWorld) -> None:
    served = requests.get(f"{registration_world.base_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(document()))


# --- beyond the document: any path, any method, any body ----------------------------------------

METHODS = ["GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]
TAILS = [
    "/users/register",
    "/users/register/guest",
    "/users/login",
    "/users/resendconfirmation/{identity}",
    "/users/{objectId}/status",
    "/users/createEmailConfirmationURL/{identity}",
    "/info",
    "/users/logout",
    "/users/isvalidusertoken/{token}",
    "/users/restorepassword/{identity}",
    "/users/{objectId}",
    "/data/Users/{objectId}",
    "/users/verifypassowrd",
    "/users/userclassprops",
    "/data/Users",
    "/users",
    "",
    "/users/register/",
    "/users//status",
    "/Users/Register",
    "/users/isvalidusertoken/",
]
segments = st.text(max_size=40).map(lambda text: quote(text, safe=""))


@st.composite
def raw_requests(draw: st.DrawFn, world: RegistrationWorld) -> tuple[str, str, dict[str, str], bytes | None]:
    """(method, path, headers, body) aimed at the API's paths and around them."""
    tenant = draw(st.sampled_from(world.tenants))
    app = tenant.app
    app_id = draw(weighted((4, st.sampled_from(_variants(app.app_id))), (1, segments)))
    key = draw(weighted((4, st.sampled_from([app.rest_api_key, app.server_api_key])), (1, segments)))
    tail = draw(st.sampled_from(TAILS))
    identities = list(tenant.users) or ["nobody@example.com"]
    object_ids = list(tenant.users.values()) + tenant.guests or ["x"]
    identity = draw(weighted((3, st.sampled_from(identities)), (1, segments)))
    object_id = draw(weighted((3, st.sampled_from(object_ids)), (1, segments)))
    token = draw(weighted((3, st.sampled_from(tenant.tokens or ["x"])), (1, segments)))
    tail = tail.replace("{identity}", quote(identity, safe=""))
    tail = tail.replace("{objectId}", quote(object_id, safe=""))
    tail = tail.replace("{token}", quote(token, safe=""))
    anywhere = st.lists(segments, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts))
    path = draw(weighted((4, st.just(f"/{app_id}/{key}{tail}")), (1, anywhere)))
    headers = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "Content-Type": st.sampled_from(
                    [
                        "application/json",
                        "application/json; charset=utf-8",
                        "text/plain",
                        "application/vnd.api+json",
                        "application/x-www-form-urlencoded",
                        "multipart/form-data; boundary=x",
                        "application/json; charset=nope",
                    ]
                ),
                "Accept-Language": st.sampled_from(["de", "de-CH,de;q=0.9", "*", "x" * 60, "en;q=abc"]),
                "Accept": st.sampled_from(["text/html", "*/*", "application/xml"]),
                # Browsers' CORS headers: an OPTIONS with Access-Control-Request-Method is a preflight (204).
                "Origin": st.sampled_from(["https://app.example.com", "null", "http://localhost:3000", "x" * 300]),
                "Access-Control-Request-Method": st.sampled_from(["POST", "GET", "DELETE", ""]),
                "Access-Control-Request-Headers": st.sampled_from(["content-type,user-token", "x-any", ""]),
                "user-token": st.sampled_from(tenant.tokens or ["x"]) | segments,
            },
        )
    )
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=12,
    )
    users = st.fixed_dictionaries(
        {"email": st.emails(), "password": st.text(min_size=1, max_size=20)},
        optional={
            "name": st.text(max_size=20),
            "login": st.text(max_size=20),
            "userStatus": st.sampled_from(["ENABLED", "DISABLED", "GUEST", ""]),
        },
    )
    body = draw(
        weighted(
            (3, users.map(lambda value: json.dumps(value).encode())),
            (2, json_values.map(lambda value: json.dumps(value).encode())),
            (1, st.binary(max_size=200)),
            (1, st.none()),
        )
    )
    return draw(st.sampled_from(METHODS)), path, headers, body


@settings(
    max_examples=RAW_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_any_request_anywhere_gets_the_envelope_and_never_a_5xx(
    data: st.DataObject, registration_world: RegistrationWorld, http: requests.Session, tally: Tally
) -> None:
    method, path, headers, body = data.draw(raw_requests(registration_world), label="request")
    response = http.request(
        method, registration_world.base_url + path, headers=headers, data=body, allow_redirects=False, timeout=30
    )
    code = _code_of(response)
    tally.record(f"{method} (any path)", response.status_code, code)
    assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.content[:300]!r}"
    if method == "HEAD" or response.status_code == 204:  # a preflight's answer has no body either
        assert response.content == b""
    elif not 200 <= response.status_code < 300:
        body = response.json()
        assert isinstance(body, dict) and set(body) == {"code", "message"}, body
        assert type(body["code"]) is int and isinstance(body["message"], str), body
