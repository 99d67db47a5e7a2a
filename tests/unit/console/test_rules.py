"""The console's pure rules: CSRF tokens, same-origin POSTs and https, safe redirects, sessions'
idle limit, the User Registration form, the audit log's paging, the rotate form's stamp, where the
System page asks the services (CONSOLE_SERVICE_URLS), and the pages' CSP."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from userreg.console.pages import content_security_policy, when
from userreg.console.rules.audit_view import before_id, detail_pairs
from userreg.console.rules.csrf import csrf_matches, csrf_token
from userreg.console.rules.key_stamps import keys_stamp, stamp_matches
from userreg.console.rules.origin import is_https, is_same_origin_post, origin_of
from userreg.console.rules.redirects import HOME, safe_next
from userreg.console.rules.sessions import IDLE_LIMIT, idle_since, needs_touch
from userreg.console.rules.setting_fields import ORDER, changed, raw_values, setting_fields
from userreg.console.service.apps import NewKeys
from userreg.console.service.system import queue_purposes, service_urls_of
from userreg.shared.app_settings import LABELS
from userreg.shared.apps import SETTINGS
from userreg.shared.messaging import Topology
from userreg.shared.settings import Settings
from userreg.shared.settings_loader import settings_problems

LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)


def test_a_csrf_token_is_the_sessions_own():
    token = csrf_token("session one")
    assert token == csrf_token("session one") and token != csrf_token("session two")
    assert csrf_matches("session one", token)
    assert not csrf_matches("session two", token)
    assert not csrf_matches("session one", "")
    assert not csrf_matches("session one", "ünïcode")


@pytest.mark.parametrize(
    ("headers", "admitted"),
    [
        ({}, True),  # no browser page: judged by the session and the token
        ({"Sec-Fetch-Site": "same-origin"}, True),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://console.test"}, True),
        ({"Sec-Fetch-Site": "same-site"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "none"}, False),
        ({"Origin": "http://console.test"}, True),
        ({"Origin": "HTTP://Console.Test/"}, True),
        ({"Origin": "https://console.test"}, False),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
    ],
)
def test_same_origin_posts(headers, admitted):
    assert is_same_origin_post(headers, origin_of("http", "console.test")) is admitted


def test_https_is_the_sockets_or_a_trusted_proxys_word():
    assert is_https("https", "10.0.0.1", None, ())
    assert not is_https("http", "10.0.0.1", "https", LOCAL)
    assert is_https("http", "127.0.0.1", "https", LOCAL)
    assert is_https("http", "127.0.0.1", "https, http", LOCAL)
    assert not is_https("http", "127.0.0.1", "http", LOCAL)
    assert not is_https("http", "not an address", "https", LOCAL)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, HOME),
        ("", HOME),
        ("/audit?app=X", "/audit?app=X"),
        ("/apps/X/users", "/apps/X/users"),
        ("//evil.example/", HOME),
        ("/\\evil.example", HOME),
        ("https://evil.example/", HOME),
        ("/sign-in", HOME),
        ("/a\r\nSet-Cookie: x=1", HOME),
        ("apps", HOME),
    ],
)
def test_the_sign_in_page_sends_back_to_our_own_pages_only(given, expected):
    assert safe_next(given) == expected


def test_a_session_is_over_after_its_idle_limit():
    now = datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert idle_since(now) == now - IDLE_LIMIT == now - timedelta(hours=8)
    assert not needs_touch(now - timedelta(seconds=30), now)
    assert needs_touch(now - timedelta(minutes=2), now)


def test_the_form_lists_the_two_toggles_first_then_every_setting():
    assert ORDER[:2] == ("registrationEnabled", "emailConfirmationRequired")
    assert sorted(ORDER) == sorted(SETTINGS)
    values = {
        "registrationEnabled": True,
        "emailConfirmationRequired": False,
        "name": "A",
        "confirmationLinkTtl": 86400,
        "beforeRegisterWebhookUrl": None,
        "identityProperty": "email",
    }
    fields = setting_fields(values, {"name": "name must not be empty"}, identity_choices=("email", "name"))
    assert [field.name for field in fields] == list(ORDER)
    assert all(field.label == LABELS[field.name] for field in fields)
    by_name = {field.name: field for field in fields}
    assert by_name["registrationEnabled"].kind == "toggle" and by_name["registrationEnabled"].value is True
    assert by_name["confirmationLinkTtl"].kind == "number" and by_name["confirmationLinkTtl"].value == "86400"
    assert by_name["confirmationLinkTtl"].minimum == 1
    assert by_name["beforeRegisterWebhookUrl"].kind == "url" and by_name["beforeRegisterWebhookUrl"].value == ""
    assert by_name["identityProperty"].choices == ("email", "name")
    assert by_name["name"].error == "name must not be empty"


def test_an_unticked_toggle_posts_nothing_and_is_off():
    raw = raw_values({"registrationEnabled": "true", "name": "A"})
    assert raw["registrationEnabled"] == "true"
    assert raw["emailConfirmationRequired"] == "false"
    assert raw["name"] == "A" and raw["guestTtl"] == ""
    fields = {field.name: field for field in setting_fields(raw)}
    assert fields["registrationEnabled"].value is True and fields["emailConfirmationRequired"].value is False


def test_only_changed_settings_are_changes():
    assert changed({"a": 1, "b": None}, {"a": 1, "b": "x"}) == {"b": (None, "x")}
    assert changed({"a": 1}, {"a": 1}) == {}


def test_audit_details_and_paging():
    assert detail_pairs({"setting": "x", "old": True, "new": None, "n": 3}) == [
        ("setting", "x"),
        ("old", "true"),
        ("new", "null"),
        ("n", "3"),
    ]
    assert before_id("42") == 42
    assert before_id(None) is None and before_id("0") is None and before_id("-1") is None
    assert before_id("x") is None and before_id("9" * 40) is None


def test_the_csp_allows_only_our_own_files_and_this_nonce():
    csp = content_security_policy("abc")
    assert "default-src 'none'" in csp and "script-src 'self' 'nonce-abc'" in csp
    assert "style-src 'self' 'nonce-abc'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    relaxed = content_security_policy("abc", {"style-src-attr": "'unsafe-inline'"})
    assert "style-src-attr 'unsafe-inline'" in relaxed and "script-src 'self' 'nonce-abc'" in relaxed


def test_moments_are_shown_in_utc():
    assert when(None) == "—"
    assert when(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))) == "2025-01-02 01:04:05 UTC"


def test_a_rotate_form_is_stamped_with_the_keys_and_the_session():
    stamp = keys_stamp("session", "REST-KEY")
    assert stamp_matches("session", "REST-KEY", stamp)
    assert not stamp_matches("session", "ROTATED-KEY", stamp)
    assert not stamp_matches("other session", "REST-KEY", stamp)
    assert not stamp_matches("session", "REST-KEY", "") and not stamp_matches("session", "REST-KEY", "é")
    assert "REST-KEY" not in stamp
    assert "REST" not in repr(NewKeys("REST", "SERVER"))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("registration", "must be comma-separated name=URL pairs"),
        ("registration=", "must be comma-separated name=URL pairs"),
        ("web=http://web:8080", "names no service 'web': the services are registration, confirmation-web, mailer"),
        ("mailer=http://a:8082,mailer=http://b:8082", "names mailer twice"),
        ("mailer=ftp://mailer", "the URL of mailer must be an absolute http(s) URL"),
        ("mailer=http://mailer:99999", "the URL of mailer must be an absolute http(s) URL"),
        ("mailer=http://mailer:8082/?x=1", "the URL of mailer must be an absolute http(s) URL"),
        ("mailer=http://user:secret@mailer:8082", "the URL of mailer must be an absolute http(s) URL"),
    ],
)
def test_console_service_urls_are_parsed_strictly(value, problem):
    with pytest.raises(ValidationError) as refused:
        Settings(console_service_urls=value)
    [line] = settings_problems(refused.value)
    assert line.startswith(f"invalid setting CONSOLE_SERVICE_URLS: {problem}")
    assert "secret" not in line


def test_the_system_page_asks_the_services_on_this_host():
    urls = service_urls_of(Settings(bind_host="0.0.0.0", registration_port=1, confirmation_port=2, mailer_port=3))
    assert urls == {
        "registration": "http://127.0.0.1:1",
        "confirmation-web": "http://127.0.0.1:2",
        "mailer": "http://127.0.0.1:3",
    }
    assert service_urls_of(Settings(bind_host="::1"))["mailer"].startswith("http://[::1]:")
    named = Settings(
        bind_host="0.0.0.0",
        mailer_port=3,
        console_service_urls=" registration=http://registration:8080/ ,confirmation-web=https://c.example",
    )
    assert service_urls_of(named) == {
        "registration": "http://registration:8080",
        "confirmation-web": "https://c.example",
        "mailer": "http://127.0.0.1:3",
    }
    assert named.console_service_urls == "registration=http://registration:8080,confirmation-web=https://c.example"
    purposes = queue_purposes(Topology("ex", (5.0, 30.0)))
    assert purposes == {
        "ex.mailer": "Mailer work queue",
        "ex.mailer.dead": "Dead letters",
        "ex.mailer.retry.5s": "Retry after 5 s",
        "ex.mailer.retry.30s": "Retry after 30 s",
    }
