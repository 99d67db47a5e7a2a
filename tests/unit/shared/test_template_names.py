"""A template is an `Email` or a `Page` member: `password-reset` names one of each (docs/api.md,
Emails and Confirmation pages), and the two enums are `str` enums with equal values there, so only
the type tells them apart."""

from __future__ import annotations

import pytest

from userreg.shared.templates import (
    AmbiguousTemplate,
    Email,
    Page,
    TemplateSource,
    TemplateStore,
    UnknownTemplate,
    kind_of,
    template_named,
)


@pytest.fixture
def store() -> TemplateStore:
    return TemplateStore(render_seconds=1.0, output_bytes=64 * 1024)


def test_the_shared_name_is_one_email_and_one_page():
    assert Email.PASSWORD_RESET == Page.PASSWORD_RESET == "password-reset"  # why values are not enough
    assert [kind_of(template) for template in (Email.PASSWORD_RESET, Page.PASSWORD_RESET)] == ["email", "page"]
    assert {kind_of(email) for email in Email} == {"email"} and {kind_of(page) for page in Page} == {"page"}


def test_a_name_becomes_its_member():
    assert template_named("confirmation") is Email.CONFIRMATION
    assert template_named("confirmation-pending") is Page.PENDING
    assert template_named("password-reset-done", "page") is Page.PASSWORD_RESET_DONE
    assert template_named("password-reset", "email") is Email.PASSWORD_RESET
    assert template_named("password-reset", "page") is Page.PASSWORD_RESET


def test_the_shared_name_without_a_kind_is_ambiguous():
    with pytest.raises(AmbiguousTemplate, match="both an email and a page"):
        template_named("password-reset")


@pytest.mark.parametrize(
    ("name", "kind"), [("welcome", None), ("confirmation", "page"), ("confirmation-failed", "email"), ("", None)]
)
def test_an_unknown_name_or_one_of_the_other_kind_is_unknown(name, kind):
    with pytest.raises(UnknownTemplate):
        template_named(name, kind)


def test_a_kind_is_email_or_page():
    with pytest.raises(ValueError):
        template_named("confirmation", "mail")


def test_the_shipped_defaults_of_the_shared_name_are_the_page_and_the_email(store):
    page, email = store.default_source(Page.PASSWORD_RESET), store.default_source(Email.PASSWORD_RESET)
    assert page.subject is None and page.text is None and email.subject and email.text
    assert 'extends "email-layout.html"' in email.html and 'extends "email-layout.html"' not in page.html
    # Asked again, each comes from its own cache entry.
    assert store.default_source(Page.PASSWORD_RESET) is store.default_source(Page.PASSWORD_RESET)
    assert store.default_source(Email.PASSWORD_RESET).subject is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda store: store.default_source("password-reset"),
        lambda store: store.check("confirmation", TemplateSource(subject="Hi", text=None, html=None)),
    ],
)
def test_a_bare_name_is_refused(store, call):
    with pytest.raises(TypeError):
        call(store)
