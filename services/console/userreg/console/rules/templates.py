"""The template editor's rules: the parts of a template as a form posts them, which of them differ
from the shipped default (only those are stored: the rest follows the default), the languages an
operator picks from, and the preview's document and Content-Security-Policy. Pure functions."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from userreg.shared.templates import TemplateSource

LANGUAGE_NAMES = {"": "All languages", "en": "English", "de": "German"}
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def language_name(locale: str) -> str:
    return LANGUAGE_NAMES.get(locale, locale)


def posted_part(raw: str | None) -> str | None:
    """A textarea's text as a template part: line breaks as "\\n" (browsers post "\\r\\n"); None
    for an empty one (the part follows the default)."""
    if raw is None:
        return None
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.strip() else None


def posted_source(subject: str | None, text: str | None, html: str | None, *, is_email: bool) -> TemplateSource:
    """The parts the editor posted (a page has only its HTML)."""
    if not is_email:
        return TemplateSource(subject=None, text=None, html=posted_part(html))
    return TemplateSource(subject=posted_part(subject), text=posted_part(text), html=posted_part(html))


def _same(part: str | None, default: str | None) -> bool:
    return part is None or (default is not None and part.strip() == default.strip())


def changed_parts(source: TemplateSource, default: TemplateSource) -> TemplateSource:
    """The parts that differ from the shipped default; the others None (they follow the default)."""
    return TemplateSource(
        subject=None if _same(source.subject, default.subject) else source.subject,
        text=None if _same(source.text, default.text) else source.text,
        html=None if _same(source.html, default.html) else source.html,
    )


def filled(source: TemplateSource, default: TemplateSource) -> TemplateSource:
    """The parts as the services render them: those left empty come from the default."""
    return TemplateSource(
        subject=source.subject or default.subject, text=source.text or default.text, html=source.html or default.html
    )


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_preview(html: str, public_confirmation_url: str) -> str:
    """A confirmation page for the preview frame: its links and style sheet are confirmation-web's
    (relative to where it is served), so the document gets that base."""
    base = f'<base href="{origin_of(public_confirmation_url)}/">'
    found = _HEAD.search(html)
    if found is None:
        return base + html
    return html[: found.end()] + base + html[found.end() :]


def preview_csp(public_confirmation_url: str) -> dict[str, str]:
    """The editor page's CSP directives for its preview frame, whose `srcdoc` document inherits
    the page's policy: an email's inline styles, a page's base and style sheet at confirmation-web.
    Scripts stay off: the frame is sandboxed without `allow-scripts`."""
    origin = origin_of(public_confirmation_url)
    return {
        "style-src-elem": f"'self' 'unsafe-inline' {origin}",
        "style-src-attr": "'unsafe-inline'",
        "img-src": f"'self' data: {origin}",
        "base-uri": origin,
    }
