"""The sample contexts `userreg template set` renders a page override with: one for each way
confirmation-web shows the page, the reset pages' included, and every shipped page renders them."""

from __future__ import annotations

import pytest

from userreg.confirmation_web.operations import sample_contexts
from userreg.shared.templates import Page, TemplateStore


def samples(page: Page, locale: str = "en") -> list[dict]:
    return sample_contexts(
        page.value,
        app_id="APP",
        app_name="Sample App",
        identity_property="email",
        properties={"email": "ann@example.com", "name": "Ann"},
        link_ttl_seconds=3600,
        public_confirmation_url="https://confirm.example.com/users",
        locale=locale,
    )


@pytest.mark.parametrize("locale", ["en", "de"])
@pytest.mark.parametrize("page", list(Page))
def test_every_shipped_page_renders_every_sample(page, locale):
    store = TemplateStore(render_seconds=1.0, output_bytes=256 * 1024)
    source = store.default_source(page)
    contexts = samples(page, locale)
    assert contexts
    for context in contexts:
        html = store.render_page(source, context)
        assert f'data-page="{page.value}"' in html and f'<html lang="{locale}">' in html


def test_the_reset_pages_have_a_sample_for_each_way_they_are_shown():
    form = samples(Page.PASSWORD_RESET)
    assert [context["password_problem"] for context in form] == [
        None,
        "empty",
        "too_long",
        "mismatch",
        "invalid",
        "busy",
    ]
    assert all(context["token"] and context["reset_url"] == "/users/APP/reset-password" for context in form)
    assert [context["just_confirmed"] for context in samples(Page.PASSWORD_RESET_DONE)] == [False, True]
    expired = samples(Page.PASSWORD_RESET_EXPIRED)
    assert [context["resend"] for context in expired] == [None, "too_soon", "sent"]
    assert [context["can_resend"] for context in expired] == [True, True, False]
    assert expired[0]["reset_resend_url"] == "/users/APP/reset-password/resend"
    assert [context["failure"] for context in samples(Page.PASSWORD_RESET_FAILED)] == [
        "unknown",
        "malformed",
        "cross_site",
        "disabled",
    ]
