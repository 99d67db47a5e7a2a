"""`POST /{appId}/{apiKey}/users/register` against the real service, PostgreSQL and RabbitMQ: every
code with its HTTP status, the check order, the response shape, dynamic schema, guest conversion
and concurrent duplicates."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from sqlalchemy import func, select

from userreg.shared.db import ConfirmationToken, SchemaColumn, User
from userreg.shared.db.models import ColumnType, UserStatus

SYSTEM_KEYS = {
    "objectId",
    "ownerId",
    "created",
    "updated",
    "userStatus",
    "lastLogin",
    "blUserLocale",
    "socialAccount",
    "___class",
}


async def _user(sessions, object_id: str) -> User:
    async with sessions() as session:
        return await session.scalar(select(User).where(User.object_id == object_id))


# --- success and the response shape ------------------------------------------------------------


async def test_registration_answers_the_user_without_the_password(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    status, body = await api.register({"email": email, "password": "watchingya", "name": "James Bond"})

    assert status == 200
    assert set(body) == SYSTEM_KEYS | {"email", "name"}
    assert body["email"] == email and body["name"] == "James Bond"
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", body["objectId"])
    assert body["ownerId"] == body["objectId"]
    assert isinstance(body["created"], int) and body["updated"] >= body["created"]
    assert body["userStatus"] == "ENABLED"
    assert body["lastLogin"] is None
    assert body["blUserLocale"] == "en"
    assert body["socialAccount"] == "BACKENDLESS"
    assert body["___class"] == "Users"
    assert "watchingya" not in json.dumps(body) and "argon2" not in json.dumps(body)

    user = await _user(sessions, body["objectId"])
    assert user.app_id == api.app.app_id
    assert user.identity_key == email.lower()
    assert user.properties == {"email": email, "name": "James Bond", "blUserLocale": "en"}
    assert user.password_hash.startswith("$argon2id$")
    assert abs(int(user.created_at.timestamp() * 1000) - body["created"]) <= 1


async def test_with_confirmation_required_the_user_is_pending_and_gets_a_token(api_for, unique_email, sessions):
    api = await api_for(email_confirmation_required=True, confirmation_link_ttl=3600)
    status, body = await api.register({"email": unique_email(), "password": "pw"})
    assert status == 200
    assert body["userStatus"] == "EMAIL_CONFIRMATION_PENDING"
    async with sessions() as session:
        tokens = (
            await session.scalars(select(ConfirmationToken).where(ConfirmationToken.user_id == body["objectId"]))
        ).all()
    assert len(tokens) == 1
    assert len(tokens[0].token_hash) == 32
    assert 3590 <= (tokens[0].expires_at - tokens[0].created_at).total_seconds() <= 3600


async def test_the_locale_comes_from_the_body_else_from_accept_language(api_for, unique_email):
    api = await api_for()
    _, body = await api.register(
        {"email": unique_email(), "password": "pw"}, headers={"Accept-Language": "de-DE,de;q=0.9"}
    )
    assert body["blUserLocale"] == "de"
    _, body = await api.register(
        {"email": unique_email(), "password": "pw", "blUserLocale": "fr"}, headers={"Accept-Language": "de"}
    )
    assert body["blUserLocale"] == "fr"


async def test_the_server_key_works_as_well_as_the_rest_key(api_for, unique_email):
    api = await api_for()
    status, _ = await api.register({"email": unique_email(), "password": "pw"}, key=api.app.server_api_key)
    assert status == 200


async def test_the_app_id_is_matched_in_any_case(api_for, unique_email):
    api = await api_for()
    status, _ = await api.register({"email": unique_email(), "password": "pw"}, app_id=api.app.app_id.lower())
    assert status == 200


# --- one test per code -------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["unknown app", "malformed app", "wrong key", "other app's key"])
async def test_2002_for_an_unknown_app_or_a_key_that_is_not_the_apps(api_for, make_app, unique_email, where):
    api = await api_for()
    other = await make_app()
    kwargs = {
        "unknown app": {"app_id": "0A1B2C3D-0000-4000-8000-00000000ABCD"},
        "malformed app": {"app_id": "not-an-app"},
        "wrong key": {"key": "0A1B2C3D-0000-4000-8000-00000000ABCD"},
        "other app's key": {"key": other.rest_api_key},
    }[where]
    status, body = await api.register({"email": unique_email(), "password": "pw"}, **kwargs)
    assert (status, body["code"]) == (401, 2002)


async def test_3009_when_registration_is_disabled(api_for, unique_email):
    api = await api_for(registration_enabled=False)
    status, body = await api.register({"email": unique_email(), "password": "pw"})
    assert (status, body["code"]) == (403, 3009)


@pytest.mark.parametrize(
    ("data", "content_type", "http"),
    [
        (None, "application/json", 400),
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"email": "a@example.com", "password": "pw"}', "text/plain", 415),
    ],
)
async def test_3038_for_a_missing_or_non_json_body(api_for, data, content_type, http):
    api = await api_for()
    status, body = await api.register(data=data, headers={"Content-Type": content_type})
    assert (status, body["code"]) == (http, 3038)


async def test_3038_with_415_when_there_is_no_content_type(api_for):
    api = await api_for()
    status, body = await api.register(
        data=b'{"email": "a@example.com", "password": "pw"}', skip_auto_headers=["Content-Type"]
    )
    assert (status, body["code"]) == (415, 3038)


async def test_3043_for_the_same_property_twice_even_in_another_case(api_for, unique_email):
    api = await api_for()
    raw = f'{{"email": "{unique_email()}", "password": "pw", "name": "a", "NAME": "b"}}'.encode()
    status, body = await api.register(data=raw, headers={"Content-Type": "application/json"})
    assert (status, body["code"]) == (400, 3043)


async def test_3039_for_a_property_named_id(api_for, unique_email):
    api = await api_for()
    status, body = await api.register({"email": unique_email(), "password": "pw", "id": "x"})
    assert (status, body["code"]) == (400, 3039)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"userStatus": "ENABLED"}, "userStatus"),
        ({"created": 1}, "created"),
        ({"ownerId": "x"}, "ownerId"),
        ({"___class": "Orders"}, "___class"),
        ({"address": {"city": "Paris"}}, "address"),
        ({"tags": ["a"]}, "tags"),
        ({"name": 42}, "name"),
    ],
)
async def test_3021_for_system_properties_objects_arrays_and_wrong_types(api_for, unique_email, extra, named):
    api = await api_for()
    status, body = await api.register({"email": unique_email(), "password": "pw", **extra})
    assert (status, body["code"]) == (400, 3021)
    assert named in body["message"]


@pytest.mark.parametrize("password", ["absent", None, ""])
async def test_3011_without_a_password(api_for, unique_email, password):
    api = await api_for()
    user = {"email": unique_email()} | ({} if password == "absent" else {"password": password})
    status, body = await api.register(user)
    assert (status, body["code"]) == (400, 3011)


@pytest.mark.parametrize("email", ["absent", None, ""])
async def test_3013_without_the_identity(api_for, email):
    api = await api_for()
    given = {} if email == "absent" else {"email": email}
    status, body = await api.register({"password": "pw", "name": "n"} | given)
    assert (status, body["code"]) == (400, 3013)


async def test_3013_follows_the_apps_identity_property(api_for, make_app, sessions):
    api = await api_for(identity_property="name")
    status, body = await api.register({"email": "x@example.com", "password": "pw"})
    assert (status, body["code"]) == (400, 3013)
    status, body = await api.register({"name": "Bond", "password": "pw"})
    assert status == 200
    status, body = await api.register({"name": "BOND", "password": "pw"})
    assert (status, body["code"]) == (409, 3033)


async def test_3010_for_an_unknown_property_without_dynamic_schema(api_for, unique_email):
    api = await api_for(dynamic_schema=False)
    status, body = await api.register({"email": unique_email(), "password": "pw", "shoeSize": 43})
    assert (status, body["code"]) == (400, 3010)
    assert "shoeSize" in body["message"]


async def _add_column(sessions, app, name, column_type=ColumnType.STRING, *, required=False, max_length=None):
    async with sessions() as session, session.begin():
        session.add(
            SchemaColumn(
                app_id=app.app_id,
                name_key=name.lower(),
                name=name,
                type=column_type,
                required=required,
                max_length=max_length,
                is_identity=False,
                built_in=False,
            )
        )


async def test_3012_and_3041_for_a_required_column(api_for, unique_email, sessions):
    api = await api_for()
    await _add_column(sessions, api.app, "phone", required=True, max_length=20)
    status, body = await api.register({"email": unique_email(), "password": "pw"})
    assert (status, body["code"]) == (400, 3012)
    for empty in (None, ""):
        status, body = await api.register({"email": unique_email(), "password": "pw", "phone": empty})
        assert (status, body["code"]) == (400, 3041)
    status, body = await api.register({"email": unique_email(), "password": "pw", "phone": "+33 1 23"})
    assert status == 200


@pytest.mark.parametrize("extra", [{"name": "n" * 501}, {"password": "p" * 1025}])
async def test_8000_for_a_value_over_its_columns_limit(api_for, unique_email, extra):
    api = await api_for()
    status, body = await api.register({"email": unique_email(), "password": "pw", **extra})
    assert (status, body["code"]) == (400, 8000)


async def test_a_1024_character_password_is_fine(api_for, unique_email):
    api = await api_for()
    status, _ = await api.register({"email": unique_email(), "password": "p" * 1024})
    assert status == 200


@pytest.mark.parametrize("email", ["not-an-address", "two@@example.com", "a b@example.com"])
async def test_3040_for_an_invalid_email(api_for, email):
    api = await api_for()
    status, body = await api.register({"email": email, "password": "pw"})
    assert (status, body["code"]) == (400, 3040)


async def test_3040_when_confirmation_requires_an_email_the_body_lacks(api_for):
    api = await api_for(identity_property="name", email_confirmation_required=True)
    status, body = await api.register({"name": "bond", "password": "pw"})
    assert (status, body["code"]) == (400, 3040)


async def test_3033_for_an_existing_identity_in_any_case(api_for, unique_email):
    api = await api_for()
    email = unique_email()
    assert (await api.register({"email": email, "password": "pw"}))[0] == 200
    status, body = await api.register({"email": email.upper(), "password": "other"})
    assert (status, body["code"]) == (409, 3033)


async def test_the_same_identity_in_two_apps_is_two_users(api_for, unique_email):
    first, second = await api_for(), await api_for()
    email = unique_email()
    assert (await first.register({"email": email, "password": "pw"}))[0] == 200
    assert (await second.register({"email": email, "password": "pw"}))[0] == 200


async def test_a_body_breaking_two_rules_gets_the_earlier_code(api_for, unique_email):
    api = await api_for()
    cases = [
        ({"email": unique_email(), "id": 1}, 3039),  # 3039 before 3011
        ({"password": "pw", "userStatus": "DISABLED"}, 3021),  # 3021 before 3013
        ({"email": "not-an-address", "name": "n" * 600, "password": "pw"}, 8000),  # 8000 before 3040
        ({"email": "not-an-address"}, 3011),  # 3011 before 3040
    ]
    for user, code in cases:
        _status, body = await api.register(user)
        assert body["code"] == code, (user, body)


async def test_3009_comes_before_the_body_is_looked_at(api_for):
    api = await api_for(registration_enabled=False)
    _status, body = await api.register(data=b"{not json", headers={"Content-Type": "application/json"})
    assert body["code"] == 3009


# --- the body size limit -----------------------------------------------------------------------


async def test_an_oversized_body_is_refused_with_9003_by_its_content_length(start_service, make_app):
    client = await start_service(max_body_bytes=2048)
    app = await make_app()
    body = json.dumps({"email": "a@example.com", "password": "pw", "bio": "x" * 4096}).encode()
    async with client.post(
        f"/{app.app_id}/{app.rest_api_key}/users/register", data=body, headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert (await response.json())["code"] == 9003


async def test_an_oversized_chunked_body_is_refused_with_9003(start_service, make_app):
    client = await start_service(max_body_bytes=2048)
    app = await make_app()

    async def chunks():
        yield b'{"email": "a@example.com", "password": "pw", "bio": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    async with client.post(
        f"/{app.app_id}/{app.rest_api_key}/users/register", data=chunks(), headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413
        assert (await response.json())["code"] == 9003


# --- dynamic schema ----------------------------------------------------------------------------


async def test_unknown_properties_become_typed_columns(api_for, unique_email, sessions):
    api = await api_for()
    status, body = await api.register(
        {
            "email": unique_email(),
            "password": "pw",
            "shoeSize": 43,
            "height": 1.82,
            "newsletter": True,
            "motto": "carpe diem",
        }
    )
    assert status == 200
    assert body["shoeSize"] == 43 and body["newsletter"] is True
    async with sessions() as session:
        columns = {
            c.name: c for c in await session.scalars(select(SchemaColumn).where(SchemaColumn.app_id == api.app.app_id))
        }
    assert columns["shoeSize"].type is ColumnType.INT
    assert columns["height"].type is ColumnType.DOUBLE
    assert columns["newsletter"].type is ColumnType.BOOLEAN
    assert columns["motto"].type is ColumnType.STRING and columns["motto"].max_length == 500

    status, body = await api.register({"email": unique_email(), "password": "pw", "SHOESIZE": "large"})
    assert (status, body["code"]) == (400, 3021)
    status, body = await api.register({"email": unique_email(), "password": "pw", "SHOESIZE": 44})
    assert status == 200 and body["shoeSize"] == 44 and "SHOESIZE" not in body


async def test_properties_are_stored_under_the_columns_name(api_for, unique_email, sessions):
    api = await api_for()
    status, body = await api.register({"EMAIL": unique_email(), "Password": "pw", "NAME": "x"})
    assert status == 200
    assert "name" in body and "NAME" not in body and "email" in body
    user = await _user(sessions, body["objectId"])
    assert set(user.properties) == {"email", "name", "blUserLocale"}


async def test_concurrent_registrations_adding_one_new_column_agree(api_for, unique_email, sessions):
    api = await api_for()
    results = await asyncio.gather(
        *(api.register({"email": unique_email(), "password": "pw", "favouriteNumber": n}) for n in range(10))
    )
    assert [status for status, _ in results] == [200] * 10
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(SchemaColumn)
            .where(SchemaColumn.app_id == api.app.app_id, SchemaColumn.name_key == "favouritenumber")
        )
    assert count == 1


async def test_a_value_that_does_not_fit_a_column_created_meanwhile_is_3021(api_for, unique_email, sessions):
    """The request saw no column; another created it with another type before this one committed."""
    from userreg.registration.keys import REGISTRAR
    from userreg.registration.representation import user_json
    from userreg.registration.rules.body import parse_json_object

    api = await api_for()
    registrar = api.client.app[REGISTRAR]
    tenant = await registrar.load_tenant(api.app.app_id)  # read before the column exists
    await _add_column(sessions, api.app, "luckyNumber", ColumnType.INT)
    body = json.dumps({"email": unique_email(), "password": "pw", "luckynumber": "seven"}).encode()
    from userreg.registration import errors

    with pytest.raises(errors.RegistrationError, match="luckynumber"):
        await registrar.create_user(tenant, parse_json_object("application/json", body, errors.MissingBody))
    body = json.dumps({"email": unique_email(), "password": "pw", "LUCKYNUMBER": 7}).encode()
    user = user_json(
        await registrar.create_user(tenant, parse_json_object("application/json", body, errors.MissingBody))
    )
    assert user["luckyNumber"] == 7


# --- guests ------------------------------------------------------------------------------------


async def test_a_guest_is_converted_in_place(api_for, unique_email, sessions):
    api = await api_for()
    status, guest = await api.guest()
    assert status == 200 and guest["userStatus"] == "GUEST" and guest["user-token"]

    email = unique_email()
    status, user = await api.register({"email": email, "password": "pw", "objectId": guest["objectId"]})
    assert status == 200
    assert user["objectId"] == guest["objectId"]
    assert user["userStatus"] == "ENABLED"
    assert user["created"] == guest["created"] and user["updated"] >= guest["updated"]
    assert "objectId" not in (await _user(sessions, guest["objectId"])).properties
    async with sessions() as session:
        users = await session.scalar(select(func.count()).select_from(User).where(User.app_id == api.app.app_id))
        assert users == 1
    assert (await api.login(email, "pw"))[0] == 200

    again = {"email": unique_email(), "password": "pw", "objectId": guest["objectId"]}
    status, body = await api.register(again)
    assert (status, body["code"]) == (400, 3021)


async def test_converting_an_unknown_or_foreign_guest_is_3021(api_for, unique_email):
    api, other = await api_for(), await api_for()
    _, foreign = await other.guest()
    for object_id in (foreign["objectId"], "0A1B2C3D-0000-4000-8000-00000000ABCD"):
        status, body = await api.register({"email": unique_email(), "password": "pw", "objectId": object_id})
        assert (status, body["code"]) == (400, 3021)


async def test_a_guest_converted_with_a_taken_identity_stays_a_guest(api_for, unique_email, sessions):
    api = await api_for()
    email = unique_email()
    await api.register({"email": email, "password": "pw"})
    _, guest = await api.guest()
    status, body = await api.register({"email": email, "password": "pw", "objectId": guest["objectId"]})
    assert (status, body["code"]) == (409, 3033)
    assert (await _user(sessions, guest["objectId"])).status is UserStatus.GUEST


# --- concurrency -------------------------------------------------------------------------------


async def test_fifty_concurrent_registrations_of_one_identity_make_one_user(api_for, unique_email, sessions):
    api = await api_for(email_confirmation_required=True)
    email = unique_email()
    variants = [email.upper() if n % 2 else email for n in range(50)]
    results = await asyncio.gather(*(api.register({"email": v, "password": f"pw{n}"}) for n, v in enumerate(variants)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 49
    assert {body["code"] for status, body in results if status == 409} == {3033}
    async with sessions() as session:
        users = (await session.scalars(select(User).where(User.app_id == api.app.app_id))).all()
        tokens = await session.scalar(
            select(func.count()).select_from(ConfirmationToken).where(ConfirmationToken.app_id == api.app.app_id)
        )
    assert len(users) == 1
    assert tokens == 1  # the losers left no token behind (nor an event: see test_events)


# --- errors on our side ------------------------------------------------------------------------


async def test_3021_with_503_when_the_database_is_unreachable(start_service, make_app, unique_email):
    app = await make_app()
    client = await start_service(database_url="postgresql+asyncpg://postgres@127.0.0.1:9/nowhere")
    async with client.post(
        f"/{app.app_id}/{app.rest_api_key}/users/register", json={"email": unique_email(), "password": "pw"}
    ) as response:
        body = await response.json()
    assert (response.status, body["code"]) == (503, 3021)
    assert "unreachable" in body["message"]


async def test_3021_with_500_says_nothing_of_the_internals(api_for, unique_email, monkeypatch, caplog):
    from userreg.registration.keys import REGISTRAR

    api = await api_for()
    hashing = api.client.app[REGISTRAR]._hashing

    async def broken(password):
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(hashing, "hash", broken)
    status, body = await api.register({"email": unique_email(), "password": "pw"})
    assert (status, body["code"]) == (500, 3021)
    assert "SELECT" not in body["message"] and "Traceback" not in body["message"]
    assert set(body) == {"code", "message"}
    assert "SELECT secret" in caplog.text  # the operator finds it in the log, by its reference


async def test_unknown_routes_and_methods_answer_the_envelope(api_for):
    api = await api_for()
    status, body = await api.call("GET", "/users/nothing-here")
    assert (status, body["code"]) == (404, 9000)
    async with api.client.get(api.path("/users/register")) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert (await response.json())["code"] == 9000
    # A user's path is an update's (PUT) alone.
    async with api.client.get(api.path("/users/0A1B2C3D-0000-4000-8000-00000000ABCD")) as response:
        assert response.status == 405 and response.headers["Allow"] == "PUT"
    async with api.client.get("/") as response:
        assert response.status == 404 and (await response.json())["code"] == 9000


async def test_an_unexpected_database_error_is_logged_without_hashes_or_links(
    api_for, unique_email, monkeypatch, caplog
):
    from userreg.registration import repository

    api = await api_for(email_confirmation_required=True)
    real = repository.outbox_row

    def broken(event):
        row = real(event)
        row.event_id = "not-a-uuid"  # PostgreSQL refuses it: an error nobody planned for
        return row

    monkeypatch.setattr(repository, "outbox_row", broken)
    status, body = await api.register({"email": unique_email(), "password": "hunter2-secret"})
    assert (status, body["code"]) == (500, 3021)
    assert "reference" in body["message"]
    assert "unexpected error" in caplog.text
    for secret in ("$argon2id$", "/confirm/", "hunter2-secret"):
        assert secret not in caplog.text
