"""Parsing what an operator types: pure functions, no database."""

from __future__ import annotations

import pytest

from userreg.admin.errors import UsageError
from userreg.admin.values import parse_assignments, parse_property, parse_setting
from userreg.shared.apps import SETTINGS
from userreg.shared.db.models import ColumnType

VALID = {
    "name": "Shop",
    "registrationEnabled": "false",
    "emailConfirmationRequired": "yes",
    "dynamicSchema": "off",
    "identityProperty": "nickname",
    "confirmationLinkTtl": "3600",
    "welcomeEmailEnabled": "1",
    "confirmOnGet": "true",
    "beforeRegisterWebhookUrl": "https://hooks.example.com/before",
    "clientRateLimit": "100/1m",
    "maxDynamicColumns": "20",
    "mailboxDailyEmailLimit": "5",
    "guestTtl": "86400",
    "allowedOrigins": "https://App.Example.com:443, http://localhost:3000",
    "sessionTtl": "3600",
    "passwordResetLinkTtl": "900",
}


def test_client_rate_limit_off_is_off():
    assert parse_setting("clientRateLimit", " OFF ") == "off"


def test_every_setting_an_operator_may_change_has_a_parser():
    assert set(VALID) == set(SETTINGS)
    parsed = {name: parse_setting(name, raw) for name, raw in VALID.items()}
    assert parsed == {
        "name": "Shop",
        "registrationEnabled": False,
        "emailConfirmationRequired": True,
        "dynamicSchema": False,
        "identityProperty": "nickname",
        "confirmationLinkTtl": 3600,
        "welcomeEmailEnabled": True,
        "confirmOnGet": True,
        "beforeRegisterWebhookUrl": "https://hooks.example.com/before",
        "clientRateLimit": "100/60s",
        "maxDynamicColumns": 20,
        "mailboxDailyEmailLimit": 5,
        "guestTtl": 86400,
        "allowedOrigins": "https://app.example.com http://localhost:3000",
        "sessionTtl": 3600,
        "passwordResetLinkTtl": 900,
    }


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("registrationEnabled", "maybe", "must be true or false"),
        ("confirmationLinkTtl", "ten", "whole number"),
        ("confirmationLinkTtl", "0", "at least 1"),
        ("confirmationLinkTtl", "999999999999", "at most"),
        ("beforeRegisterWebhookUrl", "ftp://example.com", "http(s) URL"),
        ("beforeRegisterWebhookUrl", "/relative", "http(s) URL"),
        ("name", "  ", "must not be empty"),
        ("name", "x" * 201, "at most 200"),
        ("registrationenabled", "true", "unknown setting"),
        ("clientRateLimit", "fast", "REQUESTS/SECONDS"),
        ("clientRateLimit", "0/60s", "at least 1 request"),
        ("clientRateLimit", "10/2d", "REQUESTS/SECONDS"),
        ("maxDynamicColumns", "-1", "at least 0"),
        ("mailboxDailyEmailLimit", "0", "at least 1"),
        ("guestTtl", "59", "at least 60"),
        ("allowedOrigins", " ", "or the origins allowed"),
        ("allowedOrigins", "https://app.example.com/login", "is not an origin"),
        ("allowedOrigins", "app.example.com", "is not an origin"),
        ("allowedOrigins", "* https://app.example.com", "give it alone"),
        ("sessionTtl", "59", "at least 60"),
        ("passwordResetLinkTtl", "0", "at least 60"),
        ("passwordResetLinkTtl", "604801", "at most 604800"),
    ],
)
def test_bad_setting_values_are_refused_with_the_reason(name, raw, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_setting(name, raw)


def test_the_webhook_can_be_removed():
    for word in ("", "null", "None"):
        assert parse_setting("beforeRegisterWebhookUrl", word) is None


def test_assignments():
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in (["a"], ["=1"], ["a=1", "a=2"], []):
        with pytest.raises(UsageError):
            parse_assignments(bad)


@pytest.mark.parametrize(
    ("raw", "column_type", "expected"),
    [
        ("42", ColumnType.STRING, "42"),
        ("42", ColumnType.TEXT, "42"),
        ("42", ColumnType.INT, 42),
        ("4.5", ColumnType.DOUBLE, 4.5),
        ("yes", ColumnType.BOOLEAN, True),
        ("1700000000000", ColumnType.DATETIME, 1700000000000),
        ("42", None, 42),
        ("4.5", None, 4.5),
        ("true", None, True),
        ("null", None, None),
        ("hello", None, "hello"),
        ("NaN", None, "NaN"),
        ('"quoted"', None, '"quoted"'),
    ],
)
def test_properties_are_typed_by_their_column(raw, column_type, expected):
    assert parse_property(raw, column_type, "p") == expected


@pytest.mark.parametrize(
    ("raw", "column_type"),
    [
        ("x", ColumnType.INT),
        ("x", ColumnType.DOUBLE),
        ("inf", ColumnType.DOUBLE),
        ("x", ColumnType.BOOLEAN),
    ],
)
def test_a_value_that_does_not_fit_its_column_is_refused(raw, column_type):
    with pytest.raises(UsageError, match="p must be"):
        parse_property(raw, column_type, "p")
