"""`TemplateStore.source` against the real `templates` table: an override belongs to an email or to a
page, and `password-reset` names one of each (docs/api.md, Emails and Confirmation pages)."""

from __future__ import annotations

import pytest

from userreg.shared.db import Template
from userreg.shared.templates import Email, Page, TemplateStore

PAGE_HTML = '<body data-page="{{ page }}">Choose a new password, {{ app_name }}</body>'


@pytest.fixture
def store() -> TemplateStore:
    return TemplateStore(render_seconds=1.0, output_bytes=64 * 1024)


async def test_the_password_reset_page_and_email_overrides_coexist_each_where_it_belongs(store, sessions, make_app):
    app = await make_app()
    async with sessions() as session, session.begin():
        session.add(Template(app_id=app.app_id, kind="page", name="password-reset", locale="", html_body=PAGE_HTML))
        session.add(
            Template(
                app_id=app.app_id,
                kind="email",
                name="password-reset",
                locale="",
                subject="Reset, {{ app_name }}",
                text_body="Go: {{ reset_url }}",
            )
        )
    async with sessions() as session:
        page = await store.source(session, app.app_id, Page.PASSWORD_RESET, "en")
        email = await store.source(session, app.app_id, Email.PASSWORD_RESET, "en")

    assert page.html == PAGE_HTML and page.subject is None and page.text is None
    assert (
        store.render_page(page, {"page": "password-reset", "app_name": "Club"})
        == '<body data-page="password-reset">Choose a new password, Club</body>'
    )
    rendered = store.render_email(
        email,
        {
            "app_name": "Club",
            "reset_url": "https://r.example/x",
            "user": {"name": "Ann"},
            "expires_at": "2030-01-01 00:00 UTC",
        },
    )
    assert (rendered.subject, rendered.text) == ("Reset, Club", "Go: https://r.example/x")
    # The part the email's override leaves out is the email's default, not the page's override.
    assert email.html == store.default_source(Email.PASSWORD_RESET).html
    assert 'extends "email-layout.html"' in email.html


async def test_an_override_of_one_kind_leaves_the_other_at_its_default(store, sessions, make_app):
    app = await make_app()
    async with sessions() as session, session.begin():
        session.add(Template(app_id=app.app_id, kind="page", name="password-reset", locale="de", html_body=PAGE_HTML))
    async with sessions() as session:
        for locale in ("de", "en"):
            email = await store.source(session, app.app_id, Email.PASSWORD_RESET, locale)
            assert email == store.default_source(Email.PASSWORD_RESET), locale
        assert (await store.source(session, app.app_id, Page.PASSWORD_RESET, "de")).html == PAGE_HTML
        assert await store.source(session, app.app_id, Page.PASSWORD_RESET, "en") == store.default_source(
            Page.PASSWORD_RESET
        )


async def test_a_bare_name_is_refused(store, sessions):
    # "confirmation" == Email.CONFIRMATION, but a plain string may name both kinds ("password-reset").
    async with sessions() as session:
        with pytest.raises(TypeError):
            await store.source(session, "APP", "confirmation", "en")
