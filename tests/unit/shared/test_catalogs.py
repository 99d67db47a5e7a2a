"""The message catalogs are complete and shipped as they are written: every string the templates
mark `{% trans %}` is in the catalogs' template and translated in every language, none is fuzzy or
left over, the placeholders agree, and each compiled `.mo` holds exactly its `.po` (`make i18n`
brings them all up to date)."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from userreg.shared.locales import DEFAULT_LOCALE, SUPPORTED_LOCALES
from userreg.shared.templates.i18n import CATALOGS, DOMAIN, translations

ROOT = Path(__file__).resolve().parents[3]
TRANSLATED = [locale for locale in SUPPORTED_LOCALES if locale != DEFAULT_LOCALE]

Key = tuple[str | tuple[str, ...], str | None]


def keys(catalog: Catalog) -> set[Key]:
    return {(message.id, message.context) for message in catalog if message.id}


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as file:
        return read_po(file, locale=locale)


@pytest.fixture(scope="module")
def extracted() -> set[Key]:
    """What `make i18n` extracts from the templates today (babel.cfg)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as mapping:
        method_map, options_map = parse_mapping_cfg(mapping)
    found: set[Key] = set()
    for _, _, message, _, context in extract_from_dir(
        str(ROOT),
        method_map,
        options_map,
        directory_filter=lambda path: (
            Path(path).name not in ("node_modules", ".venv") and not Path(path).name.startswith((".", "_"))
        ),
    ):
        found.add((message, context))
    return found


def test_the_templates_mark_their_words(extracted):
    assert len(extracted) > 100
    assert ("Confirm your email address", None) in extracted
    assert ("Choose a new password", "email button") in extracted


def test_the_catalogs_template_holds_exactly_what_the_templates_mark(extracted):
    template = read(CATALOGS / f"{DOMAIN}.pot")
    assert keys(template) == extracted, "run `make i18n`"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_string_is_translated_and_none_is_fuzzy(locale, extracted):
    catalog = read(CATALOGS / locale / "LC_MESSAGES" / f"{DOMAIN}.po", locale)
    assert keys(catalog) == extracted, "run `make i18n`, then translate what it added"
    assert not catalog.fuzzy and not catalog.obsolete
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{locale}: {message.id!r} is not translated"
        assert not message.fuzzy, f"{locale}: {message.id!r} is fuzzy"
        # The placeholders of msgid and msgstr agree (Babel's python-format checker).
        assert not list(message.check(catalog)), f"{locale}: {message.id!r}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_the_compiled_catalog_is_the_written_one(locale):
    folder = CATALOGS / locale / "LC_MESSAGES"
    written = read(folder / f"{DOMAIN}.po", locale)
    with (folder / f"{DOMAIN}.mo").open("rb") as file:
        compiled = read_mo(file)
    assert {(m.id, m.context): m.string for m in compiled if m.id} == {
        (m.id, m.context): m.string for m in written if m.id
    }, "run `make i18n` (pybabel compile)"


def test_every_supported_language_but_english_has_a_catalog():
    shipped = sorted(path.name for path in CATALOGS.iterdir() if path.is_dir())
    assert shipped == sorted(TRANSLATED)
    for locale in TRANSLATED:
        assert translations(locale).gettext("Send a new link") != "Send a new link"
    assert translations(DEFAULT_LOCALE).gettext("Send a new link") == "Send a new link"
    # A language without a catalog speaks English.
    assert translations("pt-br").gettext("Send a new link") == "Send a new link"
