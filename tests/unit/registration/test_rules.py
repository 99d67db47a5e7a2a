"""The registration rules as plain functions: check order, types, statuses, webhook answers.
No server, no database."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from userreg.registration import errors
from userreg.registration.rules.body import Pairs, parse_json_object
from userreg.registration.rules.credentials import authorize, login_credentials
from userreg.registration.rules.properties import MAX_PROPERTIES
from userreg.registration.rules.registration import check_registration_open, validate_registration
from userreg.registration.rules.schema import AppRules, Column
from userreg.registration.rules.status import check_status_change, status_from_body
from userreg.registration.rules.values import epoch_ms
from userreg.registration.rules.webhook import webhook_refusal
from userreg.shared.db.models import ColumnType, UserStatus
from userreg.shared.locales import preferred_language

JSON = "application/json"

# An app whose identity is `login`, so the email checks (3040) and the identity check (3013) can
# be broken independently, with two required columns for 3012 and 3041.
BASE_RULES = AppRules(
    registration_enabled=True,
    email_confirmation_required=False,
    dynamic_schema=True,
    identity_property="login",
    columns={
        column.name.lower(): column
        for column in (
            Column("login", ColumnType.STRING, max_length=500, is_identity=True),
            Column("email", ColumnType.STRING, max_length=500),
            Column("name", ColumnType.STRING, max_length=500),
            Column("password", ColumnType.STRING, max_length=1024),
            Column("blUserLocale", ColumnType.STRING, max_length=500),
            Column("nickname", ColumnType.STRING, required=True, max_length=500),
            Column("city", ColumnType.STRING, required=True, max_length=500),
            Column("bio", ColumnType.TEXT),
            Column("age", ColumnType.INT),
            Column("score", ColumnType.DOUBLE),
            Column("vip", ColumnType.BOOLEAN),
            Column("born", ColumnType.DATETIME),
        )
    },
)


def check_registration(app_rules: AppRules, content_type: str | None, body: bytes):
    """What a self-registration goes through that needs no I/O, in the service's order: 3009
    (`Registrar.authenticate`, before the body is read), 3038 (the view's body parsing), then
    `validate_registration`."""
    check_registration_open(app_rules)
    return validate_registration(app_rules, parse_json_object(content_type, body, errors.MissingBody))


BASE_BODY = [
    ("login", "alice"),
    ("password", "pw"),
    ("email", "alice@example.com"),
    ("name", "Alice"),
    ("nickname", "al"),
    ("city", "Paris"),
    ("bio", "hi"),
]


class Request:
    """A registration request being broken one rule at a time."""

    def __init__(self) -> None:
        self.rules = BASE_RULES
        self.content_type = JSON
        self.pairs = list(BASE_BODY)
        self.raw: bytes | None = None

    def set(self, name: str, value) -> None:
        self.pairs = [(n, value if n == name else v) for n, v in self.pairs]

    def drop(self, name: str) -> None:
        self.pairs = [(n, v) for n, v in self.pairs if n != name]

    def body(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return ("{" + ",".join(f"{json.dumps(n)}:{json.dumps(v)}" for n, v in self.pairs) + "}").encode()

    def check(self):
        return check_registration(self.rules, self.content_type, self.body())


def _disable_registration(r: Request) -> None:
    r.rules = replace(r.rules, registration_enabled=False)


def _not_json(r: Request) -> None:
    r.raw = b"{not json"


def _duplicate(r: Request) -> None:
    r.pairs.append(("BIO", "again"))


def _id(r: Request) -> None:
    r.pairs.append(("id", "X"))


def _system_property(r: Request) -> None:
    r.pairs.append(("userStatus", "ENABLED"))


def _no_password(r: Request) -> None:
    r.drop("password")


def _no_identity(r: Request) -> None:
    r.drop("login")


def _unknown_property(r: Request) -> None:
    r.rules = replace(r.rules, dynamic_schema=False)
    r.pairs.append(("favouriteColour", "blue"))


def _required_absent(r: Request) -> None:
    r.drop("nickname")


def _required_empty(r: Request) -> None:
    r.set("city", "")


def _too_long(r: Request) -> None:
    r.set("name", "x" * 501)


def _bad_email(r: Request) -> None:
    r.set("email", "not-an-address")


VIOLATIONS = [
    (3009, _disable_registration),
    (3038, _not_json),
    (3043, _duplicate),
    (3039, _id),
    (3021, _system_property),
    (3011, _no_password),
    (3013, _no_identity),
    (3010, _unknown_property),
    (3012, _required_absent),
    (3041, _required_empty),
    (8000, _too_long),
    (3040, _bad_email),
]


def test_the_base_request_passes():
    candidate = Request().check()
    assert candidate.identity == "alice"
    assert candidate.password == "pw"
    assert "password" not in candidate.properties


@pytest.mark.parametrize(("code", "violation"), VIOLATIONS, ids=[str(code) for code, _ in VIOLATIONS])
def test_each_rule_alone_answers_its_code(code, violation):
    request = Request()
    violation(request)
    with pytest.raises(errors.ApiError) as raised:
        request.check()
    assert raised.value.code == code


@pytest.mark.parametrize(
    ("earlier", "later"),
    list(itertools.combinations(VIOLATIONS, 2)),
    ids=[f"{a[0]}-before-{b[0]}" for a, b in itertools.combinations(VIOLATIONS, 2)],
)
def test_a_request_breaking_two_rules_gets_the_earlier_code(earlier, later):
    request = Request()
    later[1](request)
    earlier[1](request)
    with pytest.raises(errors.ApiError) as raised:
        request.check()
    assert raised.value.code == earlier[0]


# --- 3038 and its 415 --------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_3038_with_415(content_type):
    with pytest.raises(errors.MissingBody) as raised:
        check_registration(BASE_RULES, content_type, b'{"login": "a", "password": "b"}')
    assert raised.value.http_status == 415


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/vnd.api+json"])
def test_json_media_types_with_parameters_or_suffix_are_accepted(content_type):
    body = Request().body()
    assert check_registration(BASE_RULES, content_type, body).identity == "alice"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"12",
        b"{",
        b"\xff\xfe{}",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[" * 100_000,
    ],
)
def test_missing_or_non_object_bodies_are_3038_with_400(body):
    with pytest.raises(errors.MissingBody) as raised:
        check_registration(BASE_RULES, JSON, body)
    assert raised.value.http_status == 400


# --- 3021 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["userStatus", "created", "updated", "ownerId", "lastLogin", "socialAccount", "USERSTATUS", "Created"]
)
def test_system_properties_are_3021_naming_the_property(name):
    with pytest.raises(errors.RegistrationError) as raised:
        validate_registration(BASE_RULES, [*BASE_BODY, (name, 1)])
    assert name in raised.value.message


def test_class_must_be_users_when_given():
    assert validate_registration(BASE_RULES, [*BASE_BODY, ("___class", "Users")]).identity == "alice"
    with pytest.raises(errors.RegistrationError, match="___class"):
        validate_registration(BASE_RULES, [*BASE_BODY, ("___class", "Orders")])


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], []])
def test_objects_and_arrays_are_3021(value):
    with pytest.raises(errors.RegistrationError, match="bio"):
        validate_registration(BASE_RULES, [*[p for p in BASE_BODY if p[0] != "bio"], ("bio", value)])


def test_a_nested_object_from_json_is_3021():
    body = json.dumps(dict(BASE_BODY) | {"extra": {"nested": True}}).encode()
    with pytest.raises(errors.RegistrationError, match="extra"):
        check_registration(BASE_RULES, JSON, body)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("age", "12"),
        ("age", 1.5),
        ("age", True),
        ("age", 2**63),
        ("score", "1.5"),
        ("score", False),
        ("vip", 1),
        ("vip", "true"),
        ("born", True),
        ("born", "yesterday"),
        ("name", 5),
        ("password", 12345),
        ("bio", False),
    ],
)
def test_a_value_of_the_wrong_type_is_3021_naming_the_property(name, value):
    pairs = [p for p in BASE_BODY if p[0] != name] + [(name, value)]
    with pytest.raises(errors.RegistrationError) as raised:
        validate_registration(BASE_RULES, pairs)
    assert name in raised.value.message


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("age", 42, 42),
        ("age", None, None),
        ("score", 2, 2),
        ("score", 2.5, 2.5),
        ("vip", True, True),
        ("born", 1700000000000, 1700000000000),
        ("born", "2023-11-14T22:13:20Z", 1700000000000),
        ("born", "2023-11-14T22:13:20", 1700000000000),
    ],
)
def test_values_that_fit_their_column_are_stored_cleaned(name, value, stored):
    candidate = validate_registration(BASE_RULES, [*BASE_BODY, (name, value)])
    assert candidate.properties[name] == stored


@pytest.mark.parametrize("value", ["a\x00b", "\ud800"])
def test_text_postgresql_cannot_store_is_3021(value):
    with pytest.raises(errors.RegistrationError, match="name"):
        validate_registration(BASE_RULES, [*[p for p in BASE_BODY if p[0] != "name"], ("name", value)])


def test_non_finite_numbers_are_3021():
    with pytest.raises(errors.RegistrationError, match="score"):
        validate_registration(BASE_RULES, [*BASE_BODY, ("score", float("inf"))])


@pytest.mark.parametrize("name", ["first name", "user-token", "9lives", "a" * 201, "ünïcode"])
def test_a_new_property_needs_a_valid_column_name(name):
    with pytest.raises(errors.RegistrationError):
        validate_registration(BASE_RULES, [*BASE_BODY, (name, "x")])


def test_too_many_properties_is_3021():
    pairs = [*BASE_BODY, *((f"p{i}", i) for i in range(MAX_PROPERTIES))]
    with pytest.raises(errors.RegistrationError, match="at most"):
        validate_registration(BASE_RULES, pairs)


@pytest.mark.parametrize("value", [5, "not-a-guid", ""])
def test_object_id_must_be_a_guid(value):
    with pytest.raises(errors.RegistrationError, match="objectId"):
        validate_registration(BASE_RULES, [*BASE_BODY, ("objectId", value)])


def test_object_id_names_the_guest_and_is_not_a_property():
    candidate = validate_registration(BASE_RULES, [*BASE_BODY, ("objectId", "0a1b2c3d-0000-4000-8000-00000000abcd")])
    assert candidate.guest_object_id == "0A1B2C3D-0000-4000-8000-00000000ABCD"
    assert "objectId" not in candidate.properties


# --- 3011, 3013, 3012, 3041 --------------------------------------------------------------------


@pytest.mark.parametrize("password", [None, ""])
def test_a_null_or_empty_password_is_3011(password):
    with pytest.raises(errors.MissingPassword):
        validate_registration(BASE_RULES, [(n, password if n == "password" else v) for n, v in BASE_BODY])


@pytest.mark.parametrize("identity", [None, "", "   "])
def test_a_null_or_blank_identity_is_3013(identity):
    with pytest.raises(errors.MissingIdentity, match="login"):
        validate_registration(BASE_RULES, [(n, identity if n == "login" else v) for n, v in BASE_BODY])


def test_the_identity_is_matched_case_insensitively_and_keyed_in_lower_case():
    pairs = [("LOGIN" if n == "login" else n, "Alice" if n == "login" else v) for n, v in BASE_BODY]
    candidate = validate_registration(BASE_RULES, pairs)
    assert candidate.identity == "Alice"
    assert candidate.identity_key == "alice"
    assert candidate.properties["login"] == "Alice"  # stored under the column's own name


def test_a_null_required_value_is_3041():
    with pytest.raises(errors.EmptyRequiredProperty, match="nickname"):
        validate_registration(BASE_RULES, [(n, None if n == "nickname" else v) for n, v in BASE_BODY])


# --- 8000 --------------------------------------------------------------------------------------


def test_the_password_may_have_1024_characters_but_not_more():
    pairs = [(n, "p" * 1024 if n == "password" else v) for n, v in BASE_BODY]
    assert validate_registration(BASE_RULES, pairs).password == "p" * 1024
    with pytest.raises(errors.ValueTooLong, match="password"):
        validate_registration(BASE_RULES, [(n, "p" * 1025 if n == "password" else v) for n, v in BASE_BODY])


def test_a_new_string_column_holds_500_characters():
    validate_registration(BASE_RULES, [*BASE_BODY, ("motto", "m" * 500)])
    with pytest.raises(errors.ValueTooLong, match="motto"):
        validate_registration(BASE_RULES, [*BASE_BODY, ("motto", "m" * 501)])


def test_text_columns_without_a_limit_take_long_values():
    candidate = validate_registration(BASE_RULES, [(n, "b" * 10_000 if n == "bio" else v) for n, v in BASE_BODY])
    assert len(candidate.properties["bio"]) == 10_000


# --- 3040 --------------------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["plainaddress", "a@b", "a b@example.com", "@example.com", "a@", ""])
def test_an_invalid_email_is_3040(email):
    with pytest.raises(errors.InvalidEmail):
        validate_registration(BASE_RULES, [(n, email if n == "email" else v) for n, v in BASE_BODY])


def test_without_confirmation_the_email_may_be_absent():
    assert "email" not in validate_registration(BASE_RULES, [p for p in BASE_BODY if p[0] != "email"]).properties


@pytest.mark.parametrize("email", [None, "absent"])
def test_with_confirmation_the_email_is_required_3040(email):
    confirming = replace(BASE_RULES, email_confirmation_required=True)
    pairs = [p for p in BASE_BODY if p[0] != "email"] + ([] if email == "absent" else [("email", email)])
    with pytest.raises(errors.InvalidEmail):
        validate_registration(confirming, pairs)


# --- dynamic schema and the candidate ----------------------------------------------------------


def test_unknown_properties_become_columns_of_their_value_type():
    candidate = validate_registration(
        BASE_RULES, [*BASE_BODY, ("motto", "carpe"), ("visits", 3), ("ratio", 0.5), ("active", True)]
    )
    new = {column.name: column.type for column in candidate.new_columns}
    assert new == {
        "motto": ColumnType.STRING,
        "visits": ColumnType.INT,
        "ratio": ColumnType.DOUBLE,
        "active": ColumnType.BOOLEAN,
    }
    assert [column.name for column in candidate.new_columns] == sorted(new, key=str.lower)


def test_known_properties_are_stored_under_the_column_name():
    candidate = validate_registration(BASE_RULES, [*BASE_BODY, ("AGE", 30)])
    assert candidate.properties["age"] == 30
    assert not candidate.new_columns


def test_the_locale_defaults_to_the_one_given():
    default = validate_registration(BASE_RULES, BASE_BODY, default_locale="de")
    assert default.properties["blUserLocale"] == "de"
    given = validate_registration(BASE_RULES, [*BASE_BODY, ("blUserLocale", "fr")], default_locale="de")
    assert given.properties["blUserLocale"] == "fr"


def test_a_mapping_works_like_pairs():
    assert validate_registration(BASE_RULES, dict(BASE_BODY)).identity == "alice"


def test_an_identity_property_missing_from_the_schema_is_taken_as_a_string():
    app = replace(BASE_RULES, identity_property="handle")
    assert validate_registration(app, [*BASE_BODY, ("handle", "Al")]).identity_key == "al"


# --- keys, locale, login, status, webhook ------------------------------------------------------


def test_authorize():
    keys = ("REST", "SERVER")
    authorize(keys, "REST")
    authorize(keys, "SERVER", server_only=True)
    for call in (lambda: authorize(None, "REST"), lambda: authorize(keys, "OTHER"), lambda: authorize(keys, "\ud800")):
        with pytest.raises(errors.InvalidApplication):
            call()
    with pytest.raises(errors.ServerKeyRequired):
        authorize(keys, "REST", server_only=True)


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("de-CH,de;q=0.9,en;q=0.8", "de"),
        ("FR", "fr"),
        ("*", "en"),
        ("x" * 50, "en"),
        ("pt_BR", "pt"),
    ],
)
def test_locale_from_accept_language(header, locale):
    assert preferred_language(header) == locale


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"login": "a"},
        {"password": "b"},
        {"login": "", "password": "b"},
        {"login": "a", "password": ""},
        {"login": 5, "password": "b"},
    ],
)
def test_login_needs_both_values_3006(body):
    with pytest.raises(errors.EmptyLoginOrPassword):
        login_credentials(Pairs(body.items()))


@pytest.mark.parametrize(
    ("current", "target", "changes"),
    [
        (UserStatus.ENABLED, UserStatus.DISABLED, True),
        (UserStatus.DISABLED, UserStatus.ENABLED, True),
        (UserStatus.EMAIL_CONFIRMATION_PENDING, UserStatus.ENABLED, True),
        (UserStatus.EMAIL_CONFIRMATION_PENDING, UserStatus.DISABLED, True),
        (UserStatus.ENABLED, UserStatus.ENABLED, False),
        (UserStatus.DISABLED, UserStatus.DISABLED, False),
    ],
)
def test_allowed_status_changes(current, target, changes):
    assert check_status_change(current, target) is changes


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (UserStatus.GUEST, UserStatus.ENABLED),
        (UserStatus.GUEST, UserStatus.DISABLED),
        (UserStatus.ENABLED, UserStatus.EMAIL_CONFIRMATION_PENDING),
        (UserStatus.DISABLED, UserStatus.GUEST),
    ],
)
def test_refused_status_changes_are_9006(current, target):
    with pytest.raises(errors.StatusChangeNotAllowed):
        check_status_change(current, target)


@pytest.mark.parametrize("value", ["GUEST", "EMAIL_CONFIRMATION_PENDING", "enabled", None, 1])
def test_only_enabled_and_disabled_can_be_asked_for_9005(value):
    with pytest.raises(errors.MalformedRequest):
        status_from_body(Pairs([("userStatus", value)]))


@pytest.mark.parametrize(
    ("status", "body", "refused"),
    [
        (200, b"", None),
        (204, b"", None),
        (200, b"not json", None),
        (200, b'{"allow": true}', None),
        (200, b"[false]", None),
        (200, b'{"allow": false}', "the webhook rejected the user"),
        (200, b'{"allowed": false, "message": "no\\r\\nthanks"}', "the webhook rejected the user: no thanks"),
        (200, b'{"reject": true}', "the webhook rejected the user"),
        (200, b'{"status": "DENIED"}', "the webhook rejected the user"),
        (403, b'{"allow": true}', "the webhook answered HTTP 403"),
        (500, b"", "the webhook answered HTTP 500"),
        (302, b"", "the webhook answered HTTP 302"),
    ],
)
def test_webhook_answers(status, body, refused):
    assert webhook_refusal(status, "application/json", body) == refused


def test_epoch_ms():
    assert epoch_ms(datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)) == 1700000000000
