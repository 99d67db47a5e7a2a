"""Email and page templates: shipped defaults (one per template, in every language) and per-app
overrides in the database (per locale).

Both the mailer (emails) and confirmation-web (pages) render through `TemplateStore`, and the
admin command edits the overrides, so an override is picked up on the next render without a restart.

Defaults live beside this file, their words marked `{% trans %}` and translated by the message
catalogs of `userreg/shared/locale/` (`i18n.py`):
    defaults/email/<name>/subject.txt, body.txt, body.html   (body.html extends email-layout.html)
    defaults/pages/<name>.html                              (extending pages/base.html)
A render speaks the language of its context's `locale` (a supported one, else English): the
mailer's and confirmation-web's contexts carry the user's.

A template is an `Email` or a `Page` member, never a bare name: `password-reset` names both an email
and a page (docs/api.md, Emails and Confirmation pages). An operator's name becomes a member through
`template_named`; the overrides carry the kind (`templates.kind`), so each of the two has its own.

Operator-supplied templates run in Jinja's immutable sandbox; HTML is always autoescaped. Every
render, the shipped defaults' too, runs under a time and an output-size budget (`limits.py`): a
template that breaks one raises `TemplateLimitExceeded` instead of taking the service down.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from jinja2 import FileSystemLoader, TemplateNotFound
from jinja2 import Template as JinjaTemplate
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.db.models import Template
from userreg.shared.locales import DEFAULT_LOCALE, SUPPORTED_LOCALES, best_match
from userreg.shared.templates.i18n import gettext_callables
from userreg.shared.templates.limits import (
    LimitedSandbox,
    RenderLimits,
    TemplateLimitExceeded,
    limited_render,
    render_limited,
)

if TYPE_CHECKING:
    from userreg.shared.settings import Settings

DEFAULTS = Path(__file__).resolve().parent / "defaults"


class Email(str, enum.Enum):
    """The emails the mailer sends (docs/api.md, Emails); each value is the template's name."""

    CONFIRMATION = "confirmation"
    REGISTRATION = "registration"
    PASSWORD_RESET = "password-reset"
    PASSWORD_CHANGED = "password-changed"
    EMAIL_CHANGE = "email-change"


class Page(str, enum.Enum):
    """The pages of docs/api.md, Confirmation pages; each value is also the template's name and the body's
    `data-page`."""

    PENDING = "confirmation-pending"
    CONFIRMED = "confirmation-confirmed"
    EXPIRED = "confirmation-expired"
    DISABLED = "confirmation-disabled"
    FAILED = "confirmation-failed"
    PASSWORD_RESET = "password-reset"
    PASSWORD_RESET_DONE = "password-reset-done"
    PASSWORD_RESET_EXPIRED = "password-reset-expired"
    PASSWORD_RESET_FAILED = "password-reset-failed"
    EMAIL_CHANGE_PENDING = "email-change-pending"
    EMAIL_CHANGE_DONE = "email-change-done"
    EMAIL_CHANGE_FAILED = "email-change-failed"


# A template, told apart by its enum: both are `str` enums, and `Email.PASSWORD_RESET ==
# Page.PASSWORD_RESET` (the same name), so a template is compared by type and member, never by value.
TemplateName: TypeAlias = Email | Page

# The kinds, as `templates.kind` stores them and an operator names them.
EMAIL_KIND = "email"
PAGE_KIND = "page"
TEMPLATE_KINDS = (EMAIL_KIND, PAGE_KIND)


class UnknownTemplate(LookupError):
    pass


class AmbiguousTemplate(LookupError):
    """A name both an email and a page have, given without saying which."""


@dataclass(frozen=True)
class TemplateSource:
    """The three parts of a template as text; pages have only `html`."""

    subject: str | None
    text: str | None
    html: str | None


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def kind_of(template: TemplateName) -> str:
    """'email' or 'page': what a template is, and the `kind` its overrides are stored under. A bare
    name is refused (`TypeError`): it may be both (`template_named` turns a name into a member)."""
    if isinstance(template, Email):
        return EMAIL_KIND
    if isinstance(template, Page):
        return PAGE_KIND
    raise TypeError(f"a template is an Email or a Page member, not {template!r}")


def template_named(name: str, kind: str | None = None) -> TemplateName:
    """The template an operator means: `kind` ('email' or 'page') picks one of the two a shared name
    has (`password-reset`), and may be left out for every other name. `UnknownTemplate` for a name
    that is not a template (of that kind), `AmbiguousTemplate` for a shared name without a kind."""
    if kind is not None and kind not in TEMPLATE_KINDS:
        raise ValueError(f"a template's kind is {' or '.join(map(repr, TEMPLATE_KINDS))}, not {kind!r}")
    matches = [template for template in (*Email, *Page) if template.value == name and kind in (None, kind_of(template))]
    if not matches:
        raise UnknownTemplate(name)
    if len(matches) > 1:
        raise AmbiguousTemplate(
            f"{name!r} is both an email and a page: say which ({' or '.join(map(repr, TEMPLATE_KINDS))})"
        )
    return matches[0]


def available_locales() -> tuple[str, ...]:
    """The languages the shipped templates speak (`locales.SUPPORTED_LOCALES`)."""
    return SUPPORTED_LOCALES


def pick_locale(requested: str | None) -> str:
    """The best shipped locale for a user's `blUserLocale` ("de-AT" → "de"), else English."""
    return best_match((requested,), available_locales())


class DefaultsLoader(FileSystemLoader):
    """The shipped files a template extends, by their names under `defaults/`. The pages' layout
    also answers to its names from before the catalogs, `<locale>/pages/base.html`, which
    overrides written then extend (it speaks the render's language whichever name is used)."""

    def get_source(self, environment: Any, template: str) -> Any:
        language, _, rest = template.partition("/")
        if rest == "pages/base.html" and language in SUPPORTED_LOCALES:
            template = rest
        return super().get_source(environment, template)


def in_language(context: dict[str, Any]) -> dict[str, Any]:
    """The render's context with the gettext callables of its `locale` (English without one)."""
    return {**context, **gettext_callables(pick_locale(context.get("locale")))}


class TemplateStore:
    """Finds the template an app uses for a name and locale, and renders it within its limits:
    `render_seconds` of wall-clock time and `output_bytes` of output per render (an email's three
    parts together, or a page)."""

    def __init__(self, *, render_seconds: float, output_bytes: int) -> None:
        self.limits = RenderLimits(seconds=render_seconds, output_bytes=output_bytes)
        # Text parts (subject, plain body) are not HTML: no escaping there; HTML parts always escape.
        # The shipped files a template extends do not change while the process runs: no stat() per render.
        self._text_env = LimitedSandbox(
            self.limits, loader=DefaultsLoader(DEFAULTS), autoescape=False, auto_reload=False
        )
        self._html_env = LimitedSandbox(
            self.limits, loader=DefaultsLoader(DEFAULTS), autoescape=True, auto_reload=False
        )
        # Compiling is the slow part of rendering; sources repeat, so keep the compiled forms.
        self._compile = lru_cache(maxsize=512)(self._compile_uncached)
        # Shipped defaults do not change while the process runs; reading them is per-render work otherwise.
        # Keyed by kind too: an email and a page may share a name.
        self._defaults: dict[tuple[str, str], TemplateSource] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateStore:
        """A store with the limits of `TEMPLATE_RENDER_SECONDS` and `TEMPLATE_OUTPUT_BYTES`."""
        return cls(render_seconds=settings.template_render_seconds, output_bytes=settings.template_output_bytes)

    def _compile_uncached(self, source: str, html: bool) -> JinjaTemplate:
        return (self._html_env if html else self._text_env).from_string(source)

    def default_source(self, template: TemplateName) -> TemplateSource:
        """The shipped default of a template: the same for every locale (a render's context picks
        the language of its words)."""
        key = (kind_of(template), template.value)
        cached = self._defaults.get(key)
        if cached is None:
            cached = self._defaults[key] = self._read_default(template)
        return cached

    def _read_default(self, template: TemplateName) -> TemplateSource:
        name = template.value
        if isinstance(template, Email):
            folder = DEFAULTS / "email" / name
            return TemplateSource(
                subject=(folder / "subject.txt").read_text(encoding="utf-8").strip(),
                text=(folder / "body.txt").read_text(encoding="utf-8"),
                html=(folder / "body.html").read_text(encoding="utf-8"),
            )
        path = DEFAULTS / "pages" / f"{name}.html"
        return TemplateSource(subject=None, text=None, html=path.read_text(encoding="utf-8"))

    async def source(
        self, session: AsyncSession, app_id: str, template: TemplateName, locale: str | None
    ) -> TemplateSource:
        """The app's override for the user's locale, else its locale-independent override, else the
        shipped default. A part an override leaves empty comes from the default."""
        kind = kind_of(template)
        locale = pick_locale(locale)
        overrides = {
            row.locale: row
            for row in await session.scalars(
                select(Template).where(
                    Template.app_id == app_id,
                    Template.kind == kind,
                    Template.name == template.value,
                    Template.locale.in_((locale, "")),
                )
            )
        }
        default = self.default_source(template)
        override = overrides.get(locale) or overrides.get("")
        if override is None:
            return default
        return TemplateSource(
            subject=override.subject or default.subject,
            text=override.text_body or default.text,
            html=override.html_body or default.html,
        )

    def render_email(self, source: TemplateSource, context: dict[str, Any]) -> RenderedEmail:
        """The three parts, rendered under one budget in the language of the context's `locale`;
        `TemplateLimitExceeded` when they break it, any other exception when the template fails
        otherwise."""
        context = in_language(context)
        with limited_render(self.limits):
            subject = render_limited(lambda: self._compile(source.subject or "", False), context)
            text = render_limited(lambda: self._compile(source.text or "", False), context)
            html = render_limited(lambda: self._compile(source.html or "", True), context)
        # A subject is one line whatever a template or a user's data put into it.
        return RenderedEmail(subject=" ".join(subject.split()), text=text, html=html)

    def render_page(self, source: TemplateSource, context: dict[str, Any]) -> str:
        """The page, rendered within the limits in the language of the context's `locale` (as
        `render_email`)."""
        context = in_language(context)
        with limited_render(self.limits):
            return render_limited(lambda: self._compile(source.html or "", True), context)

    def check(self, template: TemplateName, source: TemplateSource) -> None:
        """Compile every part, raising `jinja2.TemplateSyntaxError` for a broken one. Nothing is kept:
        a render after it compiles again, within its time limit, as a service's first render does."""
        kind_of(template)  # a member, as for a render: never a bare name
        for part, html in ((source.subject, False), (source.text, False), (source.html, True)):
            if part:
                self._compile_uncached(part, html)


__all__ = [
    "DEFAULT_LOCALE",
    "EMAIL_KIND",
    "PAGE_KIND",
    "TEMPLATE_KINDS",
    "AmbiguousTemplate",
    "Email",
    "Page",
    "RenderLimits",
    "RenderedEmail",
    "TemplateLimitExceeded",
    "TemplateName",
    "TemplateNotFound",
    "TemplateSource",
    "TemplateStore",
    "UnknownTemplate",
    "available_locales",
    "in_language",
    "kind_of",
    "pick_locale",
    "template_named",
]
