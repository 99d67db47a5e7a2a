"""The one locale negotiation of every service: which languages are shipped, which a request accepts,
and which shipped language serves a user.

* registration stores a new user's `blUserLocale` from the request: `preferred_language`;
* the mailer writes an email in the best shipped language for that locale: `best_match`;
* confirmation-web speaks the user's own locale when it is shipped, else the browser's: `best_match`
  over the user's locale followed by `accepted_languages`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

DEFAULT_LOCALE = "en"
# The languages the shipped emails and pages speak: English, the language of the templates' own
# text, and one message catalog (`locale/<lang>/LC_MESSAGES/messages.po`) for each other.
SUPPORTED_LOCALES = ("de", "en", "fr")
# A language tag as userreg keeps it: a 2-3 letter primary language and optional subtags, with "-" or "_".
LANGUAGE_TAG = re.compile(r"^([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8})*$")


def normalised(tag: str) -> str:
    """'pt_BR' → 'pt-br'."""
    return tag.strip().replace("_", "-").lower()


def accepted_languages(header: str | None) -> list[str]:
    """The well-formed language tags of an `Accept-Language` header, normalised, most preferred first
    (by quality, then position; q=0, '*' and malformed tags are dropped)."""
    if not header:
        return []
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")):
        tag, _, params = item.partition(";")
        tag = tag.strip()
        if not LANGUAGE_TAG.fullmatch(tag):
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, normalised(tag)))
    return [tag for _, _, tag in sorted(weighted)]


def preferred_language(header: str | None) -> str:
    """The primary language of the most preferred tag ('de-CH,de;q=0.9' → 'de'), else English."""
    accepted = accepted_languages(header)
    return accepted[0].split("-")[0] if accepted else DEFAULT_LOCALE


def best_match(candidates: Iterable[str | None], shipped: Iterable[str], default: str = DEFAULT_LOCALE) -> str:
    """The first candidate (or its primary language: 'de-AT' → 'de') that is shipped, else `default`."""
    shipped = tuple(shipped)
    for candidate in candidates:
        if not candidate:
            continue
        tag = normalised(candidate)
        for option in (tag, tag.split("-")[0]):
            if option in shipped:
                return option
    return default
