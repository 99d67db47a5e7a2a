"""The languages of the shipped templates: one message catalog per language, and the gettext
callables a render gets for its language.

A default template is written once, in English, with its words marked `{% trans %}…{% endtrans %}`
(`jinja2.ext.i18n`, newstyle gettext); `locale/<lang>/LC_MESSAGES/messages.mo` translates them
(`make i18n` extracts the strings, updates the catalogs and compiles them). English needs no
catalog: a msgid is its own English text, and a string no catalog knows (an operator's own
`{% trans %}` text) is shown as written.

The callables are handed to each render through its context rather than kept in one environment
per language: a template compiles once (the compiled forms are cached by source, whatever the
language), the sandboxed environments and their limits stay exactly the two `TemplateStore` has,
and a render cannot pick up another render's language. They format their variables through the
environment's `%` operator (`LimitedSandbox.call_binop`), so a translated string is held to the
render's time and size budget like any other text the template builds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.support import NullTranslations, Translations
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from userreg.shared.locales import DEFAULT_LOCALE, SUPPORTED_LOCALES, best_match

CATALOGS = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
I18N_EXTENSION = "jinja2.ext.i18n"


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def translations(locale: str) -> NullTranslations:
    """The compiled catalog of a supported language (read once per process); English, and any
    language without a catalog, translate nothing."""
    if locale == DEFAULT_LOCALE or locale not in SUPPORTED_LOCALES:
        return NullTranslations()
    return Translations.load(str(CATALOGS), [locale], DOMAIN)


def _formatted(context: Context, text: str, variables: dict[str, Any]) -> str:
    # As Jinja's newstyle gettext: always a format string (a literal % is written %%), escaped in HTML.
    if context.eval_ctx.autoescape:
        text = Markup(text)
    # call_binop exists on sandboxed environments only (it is how they guard `%`); every environment
    # that renders with these callables is one, so the format is held to the sandbox's limits.
    return context.environment.call_binop(context, "%", text, variables)  # type: ignore[attr-defined]


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def gettext_callables(locale: str) -> dict[str, Any]:
    """`gettext`, `ngettext`, `pgettext` and `npgettext` in `locale` (a supported one, else English),
    as the i18n extension calls them from a template: the names a render's context carries."""
    catalog = translations(best_match((locale,), SUPPORTED_LOCALES))

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        return _formatted(context, catalog.gettext(message), variables)

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, number: int, **variables: Any) -> str:
        variables.setdefault("num", number)
        return _formatted(context, catalog.ngettext(singular, plural, number), variables)

    @pass_context
    def pgettext(context: Context, message_context: str, message: str, **variables: Any) -> str:
        return _formatted(context, str(catalog.pgettext(message_context, message)), variables)

    @pass_context
    def npgettext(
        context: Context, message_context: str, singular: str, plural: str, number: int, **variables: Any
    ) -> str:
        variables.setdefault("num", number)
        return _formatted(context, catalog.npgettext(message_context, singular, plural, number), variables)

    return {"gettext": gettext, "ngettext": ngettext, "pgettext": pgettext, "npgettext": npgettext}
