"""One shipped template per email and page, in every supported language: the words come from the
catalog of the render's `locale`, user data stays escaped in HTML (and only there), an operator's
override may mark its words too, and overrides written for the per-language layout still work."""

# ruff: noqa: RUF001 - French is written with its typographic apostrophe (U+2019)

from __future__ import annotations

import pytest

from userreg.shared.locales import SUPPORTED_LOCALES
from userreg.shared.templates import Email, Page, TemplateSource, TemplateStore, available_locales

STORE = TemplateStore(render_seconds=5, output_bytes=256 * 1024)

EMAIL_CONTEXT = {
    "app_name": "Club <b>&</b>",
    "identity_name": "email",
    "identity_value": "ann@example.com",
    "confirmation_url": "http://confirm.test/x",
    "reset_url": "http://confirm.test/r",
    "new_email": "new@example.com",
    "expires_at": "2030-01-02 03:04 UTC",
    "occurred_at": "2030-01-02 02:04 UTC",
    "user": {"name": "Ann <x>"},
}
PAGE_CONTEXT = {
    "app_name": "Club",
    "identity_value": "ann@example.com",
    "static_url": "/s",
    "csp_nonce": "n",
    "token": "t",
    "confirm_url": "/c",
    "resend_url": "/r",
    "can_resend": True,
}


def test_the_supported_languages_are_the_shipped_ones():
    assert available_locales() == SUPPORTED_LOCALES == ("de", "en", "fr")


@pytest.mark.parametrize("email", list(Email))
def test_every_email_is_one_template_written_in_every_language(email):
    source = STORE.default_source(email)
    assert STORE.default_source(email) is source  # one template, cached
    rendered = {locale: STORE.render_email(source, {**EMAIL_CONTEXT, "locale": locale}) for locale in SUPPORTED_LOCALES}
    assert len({part.subject for part in rendered.values()}) == 3  # three languages, three subjects
    for locale, part in rendered.items():
        assert f'<html lang="{locale}">' in part.html
        assert "Club <b>&</b>" in part.subject and "Club &lt;b&gt;&amp;&lt;/b&gt;" in part.html
        assert "Ann <x>" in part.text and "Ann &lt;x&gt;" in part.html and "Ann <x>" not in part.html
        assert "{%" not in part.text + part.html and "%(" not in part.text + part.html


@pytest.mark.parametrize("page", list(Page))
def test_every_page_is_one_template_written_in_every_language(page):
    source = STORE.default_source(page)
    html = {
        locale: STORE.render_page(source, {**PAGE_CONTEXT, "page": page.value, "locale": locale})
        for locale in SUPPORTED_LOCALES
    }
    assert len(set(html.values())) == 3
    for locale, text in html.items():
        assert f'<html lang="{locale}">' in text and f'data-page="{page.value}"' in text
        assert "{%" not in text and "%(" not in text


def test_the_words_are_the_catalogs():
    source = STORE.default_source(Page.PENDING)
    words = {"en": "Confirm my email address", "de": "E-Mail-Adresse bestätigen", "fr": "Confirmer mon adresse e-mail"}
    for locale, button in words.items():
        assert f'<button class="button" type="submit">{button}</button>' in STORE.render_page(
            source, {**PAGE_CONTEXT, "page": "confirmation-pending", "locale": locale}
        )


def test_a_language_without_a_catalog_or_no_language_is_english():
    source = STORE.default_source(Email.CONFIRMATION)
    english = STORE.render_email(source, {**EMAIL_CONTEXT, "locale": "en"})
    assert STORE.render_email(source, {**EMAIL_CONTEXT, "locale": "pt-BR"}).subject == english.subject
    assert STORE.render_email(source, EMAIL_CONTEXT).subject == english.subject
    assert STORE.render_email(source, {**EMAIL_CONTEXT, "locale": "fr-CA"}).subject.startswith("Confirmez")


def test_an_override_may_mark_its_words_and_keeps_its_own():
    override = TemplateSource(
        subject="{% trans %}Welcome to {{ app_name }}{% endtrans %}",
        text="{% trans %}Send a new link{% endtrans %} / {% trans %}Our own words for {{ app_name }}{% endtrans %}",
        html="<p>{% trans %}Welcome to {{ app_name }}{% endtrans %} 100%</p>",
    )
    rendered = STORE.render_email(override, {**EMAIL_CONTEXT, "locale": "de"})
    assert rendered.subject == "Willkommen bei Club <b>&</b>"
    assert rendered.text == "Neuen Link senden / Our own words for Club <b>&</b>"
    assert rendered.html == "<p>Willkommen bei Club &lt;b&gt;&amp;&lt;/b&gt; 100%</p>"


def test_an_override_extending_the_layout_by_its_former_name_speaks_the_pages_language():
    for former in ("en/pages/base.html", "de/pages/base.html"):
        override = TemplateSource(
            subject=None, text=None, html=f'{{% extends "{former}" %}}{{% block headline %}}Hi{{% endblock %}}'
        )
        html = STORE.render_page(override, {**PAGE_CONTEXT, "page": "confirmation-pending", "locale": "fr"})
        assert '<html lang="fr">' in html and "Club · Confirmation d’adresse e-mail sécurisée" in html
