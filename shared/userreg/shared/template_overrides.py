"""An app's overrides of the email and page templates (docs/api.md, Emails and Confirmation pages) as an
operator edits them, with `userreg template set|show|reset` or in the console's editor: one implementation behind both.

Overrides are rows of the `templates` table; the mailer and confirmation-web read them on every
render, so a change is live at once. Before an override is stored it is rendered the way the
services will, with sample data of the app (`template_samples`), under the render limits
(`TEMPLATE_RENDER_SECONDS`, `TEMPLATE_OUTPUT_BYTES`): a template that breaks one or fails to render
is refused (`TemplateFailsToRender`) and nothing is stored. Input that is wrong whatever the data
(a locale that is not shipped, a subject of two lines, a part that does not compile) is
`TemplateRefused`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, cast

from jinja2 import TemplateSyntaxError
from sqlalchemy import ColumnElement, CursorResult, delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from userreg.shared.apps import schema_of
from userreg.shared.db.models import App, Template
from userreg.shared.settings import Settings
from userreg.shared.template_samples import ContextBuilders, sample_contexts_of
from userreg.shared.templates import (
    Email,
    RenderedEmail,
    TemplateLimitExceeded,
    TemplateName,
    TemplateSource,
    TemplateStore,
    available_locales,
    kind_of,
    pick_locale,
)

LOCALE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
MAX_TEMPLATE_BYTES = 256 * 1024


class TemplateRefused(ValueError):
    """Input no template accepts; the message says why, in words fit for the operator."""


class TemplateFailsToRender(ValueError):
    """The template breaks a render limit or fails with the sample data; nothing was stored."""


def normalise_locale(raw: str | None, *, label: str = "the locale") -> str:
    """The locale an override is stored under: '' (every locale) or a shipped one, lower-case with '-'.
    The services pick the best shipped locale for a user, so an override for a locale that is not
    shipped would never be used: it is refused rather than silently ignored."""
    if raw is None or not raw.strip():
        return ""
    locale = raw.strip().replace("_", "-").lower()
    if not LOCALE.fullmatch(locale):
        raise TemplateRefused(f"{label} must look like 'en' or 'pt-br', got {raw!r}")
    shipped = available_locales()
    if locale not in shipped:
        raise TemplateRefused(
            f"no templates are shipped for locale {locale!r}; use one of {', '.join(shipped)}"
            f" or leave {label} out to override every locale"
        )
    return locale


def check_source(store: TemplateStore, template: TemplateName, source: TemplateSource) -> None:
    """`TemplateRefused` for parts a template of this kind cannot have: a page's subject or text, a
    subject of more than one line, a part over `MAX_TEMPLATE_BYTES`, a part that does not compile."""
    if not isinstance(template, Email) and (source.subject is not None or source.text is not None):
        raise TemplateRefused(f"{template.value!r} is a page: it has only an HTML part")
    for part in (source.subject, source.text, source.html):
        if part is not None and len(part.encode("utf-8")) > MAX_TEMPLATE_BYTES:
            raise TemplateRefused(f"a part of the template is larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
    if source.subject is not None and len(source.subject.strip().splitlines()) > 1:
        raise TemplateRefused("a subject is one line")
    try:
        store.check(template, source)
    except TemplateSyntaxError as exc:
        raise TemplateRefused(
            f"template {template.value!r} does not compile: {exc.message} (line {exc.lineno})"
        ) from None


def overrides_of(app: App, template: TemplateName) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clause of the app's overrides of `template` (those of every locale): by kind and
    name, as an email and a page may share a name."""
    return (Template.app_id == app.app_id, Template.kind == kind_of(template), Template.name == template.value)


def overridden_parts(row: Template | None) -> list[str]:
    """Which parts ("subject", "text", "html") an override row sets."""
    if row is None:
        return []
    parts = (("subject", row.subject), ("text", row.text_body), ("html", row.html_body))
    return [part for part, value in parts if value]


class TemplateOverrides:
    """Show, store (once it renders with sample data) and remove an app's overrides."""

    def __init__(self, store: TemplateStore, settings: Settings, builders: ContextBuilders) -> None:
        self.store = store
        self._settings = settings
        self._builders = builders

    async def sample_contexts(
        self, session: AsyncSession, app: App, template: TemplateName, locale: str
    ) -> list[dict[str, Any]]:
        """The variables the services give the template, with a sample user of the app's schema."""
        columns = (await schema_of(session, app.app_id)).values()
        return sample_contexts_of(app, template, columns, pick_locale(locale or None), self._settings, self._builders)

    async def shown(
        self, session: AsyncSession, app: App, template: TemplateName, locale: str
    ) -> tuple[TemplateSource, Template | None, str]:
        """What the services use for a user of `locale` ('' : a user without one): the template's
        source, the override it comes from (None: the shipped default) and the shipped locale."""
        # The same resolution the services use: the locale's override, else the every-locale one.
        effective = pick_locale(locale or None)
        rows = {
            row.locale: row
            for row in await session.scalars(
                select(Template).where(*overrides_of(app, template), Template.locale.in_((effective, "")))
            )
        }
        override = rows.get(effective) or rows.get("")
        used = await self.store.source(session, app.app_id, template, effective)
        return used, override, effective

    async def editable(self, session: AsyncSession, app: App, template: TemplateName, locale: str) -> TemplateSource:
        """What an editor shows for the override of exactly this locale: what the services render
        for a user of it, and for the every-locale override ('') its parts over the shipped default."""
        if locale:
            return await self.store.source(session, app.app_id, template, locale)
        default = self.store.default_source(template)
        stored = await self.stored(session, app, template, "")
        if stored is None:
            return default
        return TemplateSource(
            subject=stored.subject or default.subject,
            text=stored.text_body or default.text,
            html=stored.html_body or default.html,
        )

    async def stored(self, session: AsyncSession, app: App, template: TemplateName, locale: str) -> Template | None:
        """The override stored for exactly this locale ('' : every locale), if any."""
        return await session.scalar(select(Template).where(*overrides_of(app, template), Template.locale == locale))

    async def save(
        self,
        session: AsyncSession,
        app: App,
        template: TemplateName,
        locale: str,
        source: TemplateSource,
        *,
        replace: bool = False,
    ) -> Template | None:
        """Store the override of `template` for `locale` once it renders with sample data within the
        limits (`TemplateFailsToRender` otherwise; nothing is stored). The parts in `source` passed
        `check_source`. Without `replace`, parts that are None keep what an earlier override set;
        with it they are cleared (they follow the shipped default), and an override left with no
        part is removed (None is returned)."""
        given = {
            "subject": source.subject and source.subject.strip(),
            "text_body": source.text,
            "html_body": source.html,
        }
        if not replace:
            given = {column: value for column, value in given.items() if value is not None}
        stored = await self.stored(session, app, template, locale)
        earlier = (
            {}
            if stored is None or replace
            else {"subject": stored.subject, "text_body": stored.text_body, "html_body": stored.html_body}
        )
        # What the services will render: the parts given, the others from the earlier override or
        # the shipped default (as `TemplateStore.source` merges them).
        default = self.store.default_source(template)
        effective = TemplateSource(
            subject=given.get("subject") or earlier.get("subject") or default.subject,
            text=given.get("text_body") or earlier.get("text_body") or default.text,
            html=given.get("html_body") or earlier.get("html_body") or default.html,
        )
        self.try_with_sample_data(template, effective, await self.sample_contexts(session, app, template, locale))
        if replace and not any(given.values()):
            await self.reset(session, app, template, locale)
            return None
        statement = insert(Template).values(
            app_id=app.app_id, kind=kind_of(template), name=template.value, locale=locale, **given
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Template.app_id, Template.kind, Template.name, Template.locale],
                set_={**given, "updated_at": func.now()},
            )
        )
        stored = await self.stored(session, app, template, locale)
        if stored is not None:
            await session.refresh(stored)
        return stored

    async def reset(self, session: AsyncSession, app: App, template: TemplateName, locale: str) -> bool:
        """Remove the override for exactly this locale: the shipped default (or the every-locale
        override) is used again. False when there was none."""
        result = await session.execute(delete(Template).where(*overrides_of(app, template), Template.locale == locale))
        # A DELETE answers with the cursor's result, which SQLAlchemy types as the general `Result`.
        return cast("CursorResult[Any]", result).rowcount > 0

    def render(
        self, template: TemplateName, source: TemplateSource, context: dict[str, Any], *, consequence: str = ""
    ) -> RenderedEmail | str:
        """The template rendered as the services render it (an email's three parts, or a page);
        `TemplateFailsToRender` naming the limit or the error when it cannot be (its message goes
        on with `consequence`, e.g. ", nothing stored")."""
        name = template.value
        try:
            if isinstance(template, Email):
                return self.store.render_email(source, context)
            return self.store.render_page(source, context)
        except TemplateLimitExceeded as exc:
            raise TemplateFailsToRender(
                f"template {name!r} breaks a render limit with sample data{consequence}: {exc.reason}"
            ) from None
        except Exception as exc:  # an operator's template may fail in any way
            problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise TemplateFailsToRender(
                f"template {name!r} fails to render with sample data{consequence}: {problem}"
            ) from None

    def try_with_sample_data(
        self, template: TemplateName, source: TemplateSource, contexts: Iterable[dict[str, Any]]
    ) -> None:
        """Render the template with each sample context, under the services' limits;
        `TemplateFailsToRender` for the first that cannot be."""
        for context in contexts:
            self.render(template, source, context, consequence=", nothing stored")
