"""The decisions of confirmation-web, without a server, a database or a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from userreg.confirmation_web.model import Failure, Link, PasswordProblem
from userreg.confirmation_web.rules.links import confirms_on_open, page_for
from userreg.confirmation_web.rules.origin import is_same_origin_post, origin_of
from userreg.confirmation_web.rules.outcomes import can_resend, show, show_failure
from userreg.confirmation_web.rules.passwords import (
    PASSWORD_MAX_LENGTH,
    password_problem,
    reset_outcome,
    retry_after,
)
from userreg.shared.db.models import UserStatus
from userreg.shared.locales import accepted_languages, best_match
from userreg.shared.templates import Page

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def link(
    status: UserStatus = UserStatus.EMAIL_CONFIRMATION_PENDING,
    *,
    expires_in: float = 3600,
    confirm_on_get: bool = False,
) -> Link:
    return Link(
        app_id="A",
        app_name="App",
        identity_property="email",
        confirm_on_get=confirm_on_get,
        confirmation_required=True,
        user_id="U",
        status=status,
        expires_at=NOW + timedelta(seconds=expires_in),
        properties={"email": "a@example.com"},
    )


@pytest.mark.parametrize(
    ("status", "expires_in", "page"),
    [
        (UserStatus.EMAIL_CONFIRMATION_PENDING, 3600, Page.PENDING),
        (UserStatus.EMAIL_CONFIRMATION_PENDING, 0, Page.EXPIRED),
        (UserStatus.EMAIL_CONFIRMATION_PENDING, -1, Page.EXPIRED),
        (UserStatus.ENABLED, 3600, Page.CONFIRMED),
        (UserStatus.ENABLED, -86400, Page.CONFIRMED),  # any link of a confirmed user, expired or not
        (UserStatus.DISABLED, 3600, Page.DISABLED),
        (UserStatus.DISABLED, -1, Page.DISABLED),
        (UserStatus.GUEST, 3600, Page.FAILED),
    ],
)
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


@pytest.mark.parametrize(
    ("headers", "accepted"),
    [
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
    ],
)
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


@pytest.mark.parametrize(
    ("user_locale", "header", "expected"),
    [
        ("de", "en-US,en", "de"),  # the user's own locale wins: it is the email's language
        ("de_AT", None, "de"),
        ("fr", "de-DE,de;q=0.9", "de"),  # not shipped: the browser decides
        (None, "de-CH, en;q=0.5", "de"),
        (None, "fr, es", "en"),
        (None, None, "en"),
    ],
)
def test_locale_choice(user_locale, header, expected):
    assert best_match((user_locale, *accepted_languages(header)), ("de", "en")) == expected


@pytest.mark.parametrize(
    ("status", "expires_in", "page", "failure"),
    [
        (UserStatus.ENABLED, 3600, Page.PASSWORD_RESET, None),
        (UserStatus.EMAIL_CONFIRMATION_PENDING, 3600, Page.PASSWORD_RESET, None),  # the link proves the address
        (UserStatus.ENABLED, 0, Page.PASSWORD_RESET_EXPIRED, None),
        (UserStatus.EMAIL_CONFIRMATION_PENDING, -1, Page.PASSWORD_RESET_EXPIRED, None),
        (UserStatus.DISABLED, 3600, Page.PASSWORD_RESET_FAILED, Failure.DISABLED),  # disabling stays in force
        (UserStatus.DISABLED, -1, Page.PASSWORD_RESET_FAILED, Failure.DISABLED),
        (UserStatus.GUEST, 3600, Page.PASSWORD_RESET_FAILED, Failure.UNKNOWN),
    ],
)
def test_a_reset_link_shows_its_page_by_status_first_then_expiry(status, expires_in, page, failure):
    outcome = reset_outcome(link(status, expires_in=expires_in), "TOKEN", NOW)
    assert (outcome.page, outcome.failure) == (page, failure)
    assert (
        outcome.status
        == {Page.PASSWORD_RESET: 200, Page.PASSWORD_RESET_EXPIRED: 410, Page.PASSWORD_RESET_FAILED: 404}[page]
    )
    # The token goes back only to pages with a form; a failed page names the app, not the user.
    assert outcome.token == (None if failure else "TOKEN")
    assert (outcome.link is None) == (failure is not None) and outcome.app_id == ("A" if failure else None)


@pytest.mark.parametrize(
    ("password", "repeat", "problem"),
    [
        ("secret", "secret", None),
        ("x" * PASSWORD_MAX_LENGTH, "x" * PASSWORD_MAX_LENGTH, None),
        ("🔑" * PASSWORD_MAX_LENGTH, "🔑" * PASSWORD_MAX_LENGTH, None),  # characters, not bytes
        (" ", " ", None),  # any non-empty password, as the registration API takes it
        ("", "", PasswordProblem.EMPTY),
        ("", "secret", PasswordProblem.EMPTY),
        ("x" * (PASSWORD_MAX_LENGTH + 1), "x" * (PASSWORD_MAX_LENGTH + 1), PasswordProblem.TOO_LONG),
        ("secret", "Secret", PasswordProblem.MISMATCH),
        ("secret", "", PasswordProblem.MISMATCH),
        ("nul\x00", "nul\x00", PasswordProblem.INVALID),
        ("lone \udc80", "lone \udc80", PasswordProblem.INVALID),
    ],
)
def test_which_new_passwords_the_form_accepts(password, repeat, problem):
    assert password_problem(password, repeat) == problem


def test_retry_after_is_whole_seconds_and_at_least_one():
    assert [retry_after(seconds) for seconds in (0, 0.001, 1, 1.2, 59.9)] == [1, 1, 1, 2, 60]


def test_only_pages_with_a_form_carry_the_token_and_expired_pages_offer_new_links():
    for page in (Page.PENDING, Page.EXPIRED, Page.PASSWORD_RESET, Page.PASSWORD_RESET_EXPIRED):
        assert show(page, link(), "TOKEN").token == "TOKEN"
    for page in (Page.CONFIRMED, Page.DISABLED, Page.PASSWORD_RESET_DONE):
        assert show(page, link(), "TOKEN").token is None
    no_confirmation = Link(
        app_id="A",
        app_name="App",
        identity_property="email",
        confirm_on_get=False,
        confirmation_required=False,
        user_id="U",
        status=UserStatus.ENABLED,
        expires_at=NOW,
    )
    assert can_resend(show(Page.EXPIRED, link(), "TOKEN"))
    assert not can_resend(show(Page.EXPIRED, no_confirmation, "TOKEN"))
    # A reset link can be renewed in an app that does not confirm emails.
    assert can_resend(show(Page.PASSWORD_RESET_EXPIRED, no_confirmation, "TOKEN"))
    assert not can_resend(show(Page.PASSWORD_RESET_EXPIRED, link()))  # after the new link was sent
    failed = show_failure(Failure.CROSS_SITE, ("A", "App"), 403, page=Page.PASSWORD_RESET_FAILED)
    assert (failed.page, failed.status, failed.app_name) == (Page.PASSWORD_RESET_FAILED, 403, "App")
    assert not can_resend(failed)
