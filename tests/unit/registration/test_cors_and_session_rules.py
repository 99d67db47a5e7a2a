"""The CORS decisions (`rules.cors`) and the session clock (`rules.sessions`) as plain functions, and
the operator's `allowedOrigins` as the admin command parses it. No server, no database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from userreg.registration.rules import cors, sessions
from userreg.registration.rules.schema import AppRules
from userreg.shared import origins
from userreg.shared.app_settings import SettingRefused, parse_setting
from userreg.shared.db.models import App

LISTED = cors.CorsPolicy(frozenset({"https://app.example.com", "http://localhost:3000"}))


# --- origins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM/", "https://app.example.com"),
        ("https://app.example.com:443", "https://app.example.com"),
        ("http://app.example.com:80", "http://app.example.com"),
        ("https://app.example.com:8443", "https://app.example.com:8443"),
        ("http://localhost:3000", "http://localhost:3000"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://bücher.de", "https://xn--bcher-kva.de"),
        ("capacitor://localhost", "capacitor://localhost"),
    ],
)
def test_an_origin_is_written_as_a_browser_sends_it(text, origin):
    assert origins.normalize_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "",
        "*",
        "null",
        "app.example.com",
        "https://",
        "https://app.example.com/login",
        "https://a.com?x=1",
        "https://a.com#top",
        "https://user@a.com",
        "https://a.com:99999",
        "https://a .com",
        "https://a.com\r\nX: y",
        "https://-a.com",
        "//a.com",
        "https://a..com",
    ],
)
def test_what_is_no_origin(text):
    assert origins.normalize_origin(text) is None


def test_an_operators_setting_is_stored_in_browser_form_each_origin_once():
    assert origins.parse_allowed_origins(" * ") == "*"
    assert (
        origins.parse_allowed_origins("https://A.example.com:443/, http://localhost:3000\thttps://a.example.com")
        == "https://a.example.com http://localhost:3000"
    )
    for bad, reason in (("", "give * or"), ("* https://a.com", "alone"), ("https://a.com/x", "not an origin")):
        with pytest.raises(ValueError, match=reason.replace("*", r"\*")):
            origins.parse_allowed_origins(bad)


def test_the_command_and_the_console_validate_allowed_origins_through_the_same_rule():
    assert (
        parse_setting("allowedOrigins", "https://App.example.com, http://localhost:3000")
        == "https://app.example.com http://localhost:3000"
    )
    with pytest.raises(SettingRefused, match=re.escape("allowedOrigins: 'https://a.com/x' is not an origin")):
        parse_setting("allowedOrigins", "https://a.com/x")


def test_a_stored_setting_becomes_the_apps_policy():
    assert cors.policy_of("*") is cors.ANY and cors.policy_of(None) is cors.ANY and cors.policy_of("") is cors.ANY
    assert cors.policy_of("https://a.com  http://b.com:81") == cors.CorsPolicy(
        frozenset({"https://a.com", "http://b.com:81"})
    )
    # An entry written around the admin command is left out; the others still work.
    assert cors.policy_of("https://a.com not-an-origin") == cors.CorsPolicy(frozenset({"https://a.com"}))
    app = App(
        app_id="A",
        name="n",
        registration_enabled=True,
        email_confirmation_required=False,
        dynamic_schema=True,
        identity_property="email",
        max_dynamic_columns=1,
        client_rate_limit="off",
        allowed_origins="https://a.com",
    )
    assert AppRules.of(app, []).cors == cors.CorsPolicy(frozenset({"https://a.com"}))


# --- the headers ------------------------------------------------------------------------------


def test_any_origin_reads_with_a_star():
    expected = {cors.ALLOW_ORIGIN: "*", cors.EXPOSE_HEADERS: "Retry-After, X-Request-Id"}
    assert cors.response_headers(cors.ANY, "https://anything.example") == expected
    assert cors.response_headers(cors.ANY, None) == expected


def test_a_listed_origin_gets_its_own_name_and_another_nothing_but_vary():
    assert cors.response_headers(LISTED, "https://app.example.com") == {
        cors.VARY: "Origin",
        cors.ALLOW_ORIGIN: "https://app.example.com",
        cors.EXPOSE_HEADERS: "Retry-After, X-Request-Id",
    }
    for origin in ("https://evil.example", "https://APP.example.com", "null", None, "https://app.example.com/"):
        assert cors.response_headers(LISTED, origin) == {cors.VARY: "Origin"}, origin


def test_a_preflight_gets_methods_headers_and_max_age_for_an_allowed_origin_only():
    headers = cors.preflight_headers(LISTED, "http://localhost:3000", "Content-Type, user-token")
    assert headers == {
        cors.VARY: "Origin, Access-Control-Request-Headers",
        cors.ALLOW_ORIGIN: "http://localhost:3000",
        cors.ALLOW_METHODS: "GET, POST, PUT",
        cors.ALLOW_HEADERS: "content-type, user-token",
        cors.MAX_AGE: "600",
    }
    assert cors.preflight_headers(LISTED, "https://evil.example", "content-type") == {
        cors.VARY: "Origin, Access-Control-Request-Headers"
    }
    assert cors.preflight_headers(cors.ANY, None, None)[cors.ALLOW_ORIGIN] == "*"


@pytest.mark.parametrize(
    ("requested", "allowed"),
    [
        ("content-type,user-token,application-type", ["content-type", "user-token", "application-type"]),
        ("Application-Type", ["application-type"]),
        (None, list(cors.ALLOWED_REQUEST_HEADERS)),
        ("", list(cors.ALLOWED_REQUEST_HEADERS)),
        ("content-type, x-secret", list(cors.ALLOWED_REQUEST_HEADERS)),
    ],
)
def test_requested_headers_are_echoed_when_all_are_allowed(requested, allowed):
    assert list(cors.allowed_request_headers(requested)) == allowed


def test_the_required_request_headers_are_allowed():
    assert {"content-type", "user-token", "application-type"} <= {h.lower() for h in cors.ALLOWED_REQUEST_HEADERS}


def test_a_preflight_is_an_options_request_asking_for_a_method():
    assert cors.is_preflight("OPTIONS", {cors.REQUEST_METHOD: "POST"})
    assert not cors.is_preflight("OPTIONS", {})
    assert not cors.is_preflight("GET", {cors.REQUEST_METHOD: "POST"})


# --- the session clock -------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86400


def test_a_session_ends_ttl_after_its_last_use():
    assert not sessions.is_expired(NOW - timedelta(seconds=DAY - 1), DAY, NOW)
    assert sessions.is_expired(NOW - timedelta(seconds=DAY), DAY, NOW)
    assert sessions.expires_at(NOW, DAY) == NOW + timedelta(days=1)


def test_a_use_is_written_after_a_tenth_of_the_ttl_and_at_most_a_minute():
    assert sessions.refresh_interval(30 * DAY) == timedelta(minutes=1)
    assert sessions.refresh_interval(100) == timedelta(seconds=10)
    assert not sessions.needs_refresh(NOW - timedelta(seconds=59), 30 * DAY, NOW)
    assert sessions.needs_refresh(NOW - timedelta(seconds=60), 30 * DAY, NOW)
    assert not sessions.needs_refresh(NOW - timedelta(seconds=9), 100, NOW)
    assert sessions.needs_refresh(NOW - timedelta(seconds=10), 100, NOW)


def test_what_an_operator_sees_of_a_session():
    created, used = NOW - timedelta(days=3), NOW - timedelta(days=2)
    info = sessions.session_info(created, used, DAY, NOW)
    assert info == sessions.SessionInfo(created, used, used + timedelta(days=1), expired=True)
    assert not sessions.session_info(created, used, 3 * DAY, NOW).expired
