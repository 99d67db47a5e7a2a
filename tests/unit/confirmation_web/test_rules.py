"""The decisions of confirmation-web, without a server, a database or a broker."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from userreg.confirmation_web.access_log import redact_path
from userreg.confirmation_web.model import Link
from userreg.confirmation_web.rules.links import confirms_on_open, page_for
from userreg.confirmation_web.rules.origin import is_same_origin_post, origin_of
from userreg.shared.db.models import UserStatus
from userreg.shared.locales import accepted_languages, best_match
from userreg.shared.templates import Page

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)


def link(status: UserStatus = UserStatus.EMAIL_CONFIRMATION_PENDING, *, expires_in: float = 3600,
         confirm_on_get: bool = False) -> Link:
    return Link(app_id="A", app_name="App", identity_property="email", confirm_on_get=confirm_on_get,
                confirmation_required=True, user_id="U", status=status,
                expires_at=NOW + timedelta(seconds=expires_in), properties={"email": "a@example.com"})


@pytest.mark.parametrize(("status", "expires_in", "page"), [
    (UserStatus.EMAIL_CONFIRMATION_PENDING, 3600, Page.PENDING),
    (UserStatus.EMAIL_CONFIRMATION_PENDING, 0, Page.EXPIRED),
    (UserStatus.EMAIL_CONFIRMATION_PENDING, -1, Page.EXPIRED),
    (UserStatus.ENABLED, 3600, Page.CONFIRMED),
    (UserStatus.ENABLED, -86400, Page.CONFIRMED),  # any link of a confirmed user, expired or not
    (UserStatus.DISABLED, 3600, Page.DISABLED),
    (UserStatus.DISABLED, -1, Page.DISABLED),
    (UserStatus.GUEST, 3600, Page.FAILED),
])
def test_page_follows_the_users_status_first_then_the_links_expiry(status, expires_in, page):
    assert page_for(link(status, expires_in=expires_in), NOW) is page


def test_no_link_is_the_failed_page():
    assert page_for(None, NOW) is Page.FAILED


def test_opening_confirms_only_a_real_get_of_a_pending_link_when_the_app_allows_it():
    allowed = link(confirm_on_get=True)
    assert confirms_on_open(Page.PENDING, allowed, "GET", {})
    assert not confirms_on_open(Page.PENDING, link(), "GET", {})
    assert not confirms_on_open(Page.PENDING, allowed, "HEAD", {})
    assert not confirms_on_open(Page.EXPIRED, allowed, "GET", {})
    assert not confirms_on_open(Page.PENDING, allowed, "GET", {"Sec-Purpose": "prefetch;prerender"})
    assert not confirms_on_open(Page.PENDING, allowed, "GET", {"Purpose": "prefetch"})


PUBLIC = "https://confirm.example.com"


@pytest.mark.parametrize(("headers", "accepted"), [
    ({"Sec-Fetch-Site": "same-origin"}, True),
    ({"Sec-Fetch-Site": "same-origin", "Origin": "null"}, True),  # what no-referrer makes browsers send
    ({"Sec-Fetch-Site": "cross-site"}, False),
    ({"Sec-Fetch-Site": "same-site"}, False),
    ({"Sec-Fetch-Site": "none"}, False),
    ({"Sec-Fetch-Site": "cross-site", "Origin": PUBLIC}, False),
    ({"Origin": PUBLIC}, True),
    ({"Origin": "https://CONFIRM.example.com"}, True),
    ({"Origin": "https://evil.example"}, False),
    ({"Origin": "http://confirm.example.com"}, False),
    ({"Origin": "null"}, True),
    ({}, True),  # not a browser page: the token alone decides
])
def test_posts_from_another_site_are_refused(headers, accepted):
    assert is_same_origin_post(headers, origin_of(PUBLIC)) is accepted


def test_origin_of_drops_path_and_keeps_port():
    assert origin_of("https://Confirm.Example.com:8443/users/") == "https://confirm.example.com:8443"


def test_accept_language_is_ordered_by_quality_then_position():
    assert accepted_languages("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5") == [
        "fr-ch",
        "fr",
        "en",
        "de",
    ]
    assert accepted_languages("de;q=0.5, en;q=0.9") == ["en", "de"]
    assert accepted_languages("en;q=0, de") == ["de"]
    assert accepted_languages("de;q=abc, en") == ["en"]
    assert accepted_languages("") == [] and accepted_languages(None) == []


@pytest.mark.parametrize(("user_locale", "header", "expected"), [
    ("de", "en-US,en", "de"),          # the user's own locale wins: it is the email's language
    ("de_AT", None, "de"),
    ("fr", "de-DE,de;q=0.9", "de"),    # not shipped: the browser decides
    (None, "de-CH, en;q=0.5", "de"),
    (None, "fr, es", "en"),
    (None, None, "en"),
])
def test_locale_choice(user_locale, header, expected):
    assert best_match((user_locale, *accepted_languages(header)), ("de", "en")) == expected


def test_access_log_never_shows_a_token():
    assert redact_path("/APP-ID/confirm/abcDEF_123-xyz") == "/APP-ID/confirm/[token]"
    assert redact_path("/APP-ID/confirm/resend") == "/APP-ID/confirm/[token]"
    assert redact_path("/health") == "/health"
