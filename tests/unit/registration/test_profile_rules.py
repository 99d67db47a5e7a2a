"""The checks of a signed-in user's update (`rules.profile`) and the Users schema as
`describeUserClass` reads it, as plain functions. No server, no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from tests.unit.registration.test_rules import BASE_RULES
from userreg.registration import errors
from userreg.registration.representation import user_class_json
from userreg.registration.rules.profile import validate_update
from userreg.shared.db.models import User, UserStatus

OBJECT_ID = "0A1B2C3D-0000-4000-8000-00000000ABCD"
NOW = datetime(2030, 1, 2, tzinfo=UTC)


def _user(status: UserStatus = UserStatus.ENABLED, **properties) -> User:
    properties = {"login": "alice", "email": "alice@example.com", "nickname": "al", "city": "Paris", **properties}
    return User(
        object_id=OBJECT_ID,
        app_id="APP",
        identity_key="alice",
        properties=properties,
        password_hash="$argon2id$…",
        status=status,
        created_at=NOW,
        updated_at=NOW,
    )


def test_an_update_names_only_what_changes():
    change = validate_update(BASE_RULES, {"name": "Alice L.", "age": 30}, _user())
    assert change.properties == {"name": "Alice L.", "age": 30}
    assert (change.password, change.identity_key, change.new_columns, change.pending_email) == (None, None, (), None)


def test_what_the_sdk_sends_back_of_the_server_s_properties_is_ignored():
    echoed = {
        "objectId": OBJECT_ID.lower(),
        "ownerId": "someone",
        "created": 1,
        "updated": 2,
        "lastLogin": None,
        "socialAccount": "BACKENDLESS",
        "___class": "Users",
        "userStatus": "ENABLED",
        "user-token": "t",
        "name": "A",
    }
    assert validate_update(BASE_RULES, echoed, _user()).properties == {"name": "A"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([("name", "a"), ("Name", "b")], errors.DuplicateProperty),
        ({"id": 1}, errors.IdPropertyNotAllowed),
        ({"objectId": "0A1B2C3D-0000-4000-8000-000000000000"}, errors.RegistrationError),
        ({"userStatus": "DISABLED"}, errors.RegistrationError),
        ({"___class": "Orders"}, errors.RegistrationError),
        ({"age": "old"}, errors.RegistrationError),
        ({"name": ["a"]}, errors.RegistrationError),
        ({"password": ""}, errors.MissingPassword),
        ({"password": None}, errors.MissingPassword),
        ({"login": " "}, errors.MissingIdentity),
        ({"city": None}, errors.EmptyRequiredProperty),
        ({"name": "n" * 501}, errors.ValueTooLong),
        ({"email": "nope"}, errors.InvalidEmail),
    ],
)
def test_register_s_rules_where_they_apply(body, error):
    with pytest.raises(error):
        validate_update(BASE_RULES, body, _user())


def test_unknown_properties_follow_the_schema_settings():
    with pytest.raises(errors.UnknownProperty):
        validate_update(replace(BASE_RULES, dynamic_schema=False), {"shoe": 42}, _user())
    with pytest.raises(errors.TooManyDynamicColumns):
        validate_update(replace(BASE_RULES, max_dynamic_columns=0), {"shoe": 42}, _user())
    assert [column.name for column in validate_update(BASE_RULES, {"shoe": 42}, _user()).new_columns] == ["shoe"]


def test_a_new_identity_and_password():
    change = validate_update(BASE_RULES, {"login": "Bob", "password": "pw2"}, _user())
    assert (change.identity_key, change.password) == ("bob", "pw2")
    assert "password" not in change.properties
    assert validate_update(BASE_RULES, {"login": "ALICE"}, _user()).identity_key is None  # the same identity


def test_an_app_that_confirms_emails_keeps_a_new_address_aside():
    rules = replace(BASE_RULES, email_confirmation_required=True)
    change = validate_update(rules, {"email": "new@example.com", "name": "N"}, _user())
    assert change.pending_email == "new@example.com" and change.properties == {"name": "N"}
    assert validate_update(rules, {"email": "Alice@EXAMPLE.com"}, _user()).pending_email is None
    with pytest.raises(errors.InvalidEmail):
        validate_update(rules, {"email": None}, _user())


def test_a_guest_changes_properties_but_not_its_password_or_identity():
    guest = _user(UserStatus.GUEST)
    assert validate_update(BASE_RULES, {"nickname": "g"}, guest).properties == {"nickname": "g"}
    for body in ({"password": "pw"}, {"login": "g"}):
        with pytest.raises(errors.RegistrationError):
            validate_update(BASE_RULES, body, guest)


def test_the_users_schema_as_describe_user_class_reads_it():
    columns = {column["name"]: column for column in user_class_json(BASE_RULES)}
    assert list(columns) == sorted(columns, key=str.lower)
    assert columns["login"] == {
        "name": "login",
        "type": "STRING",
        "required": True,
        "identity": True,
        "defaultValue": None,
        "dataSize": 500,
    }
    assert columns["city"]["required"] is True and columns["name"]["required"] is False
    assert columns["password"]["required"] is True and columns["bio"]["dataSize"] is None
