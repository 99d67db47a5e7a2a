"""Email templates and pages in the console (services/console/README.md): an app's templates by language, an editor
with a preview rendered with sample data by the same sandboxed `TemplateStore` under the same
limits as the mailer and confirmation-web, save (only once the template renders with every sample
context: `shared.template_overrides`, as `userreg template set`), reset to the default, and a test
email sent the way the mailer sends every email (`mailer.operations.send_test_email`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from userreg.console.rules.templates import changed_parts, filled, page_preview
from userreg.shared import audit
from userreg.shared.apps import get_app
from userreg.shared.db.models import App, Template
from userreg.shared.settings import Settings
from userreg.shared.template_overrides import (
    TemplateFailsToRender,
    TemplateOverrides,
    TemplateRefused,
    check_source,
    overridden_parts,
)
from userreg.shared.templates import Email, Page, RenderedEmail, TemplateName, TemplateSource, kind_of

# mailer.operations.send_test_email: (settings, rendered, *, to, template) → the address it went to.
SendTestEmail = Callable[..., Awaitable[str]]


@dataclass(frozen=True)
class Entry:
    template: TemplateName
    kind: str
    # The languages with an override ('' : all languages).
    overridden: tuple[str, ...]


@dataclass(frozen=True)
class Preview:
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    # Why it could not be rendered (nothing else is set then).
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "text": self.text, "html": self.html, "error": self.error}


@dataclass(frozen=True)
class Editor:
    app: App
    template: TemplateName
    locale: str
    source: TemplateSource
    # The parts the override of exactly this language sets ([] : none).
    overridden: list[str]
    preview: Preview


def _named(template: TemplateName, locale: str) -> dict[str, Any]:
    return {"kind": kind_of(template), "name": template.value, "locale": locale or None}


class Templates:
    def __init__(
        self,
        sessions: async_sessionmaker,
        overrides: TemplateOverrides,
        settings: Settings,
        send_test_email: SendTestEmail,
    ) -> None:
        self._sessions = sessions
        self._overrides = overrides
        self._settings = settings
        self._send_test_email = send_test_email

    async def catalogue(self, app_id: str) -> tuple[App, list[Entry]]:
        """The app's emails and pages, each with the languages it has an override for."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            rows = (
                await session.execute(
                    select(Template.kind, Template.name, Template.locale).where(Template.app_id == app.app_id)
                )
            ).all()
        locales: dict[tuple[str, str], list[str]] = {}
        for kind, name, locale in rows:
            locales.setdefault((kind, name), []).append(locale)
        entries = [
            Entry(template, kind_of(template), tuple(sorted(locales.get((kind_of(template), template.value), []))))
            for template in (*Email, *Page)
        ]
        return app, entries

    async def editor(
        self, app_id: str, template: TemplateName, locale: str, source: TemplateSource | None = None
    ) -> Editor:
        """The editor of the override for `locale` ('' : all languages): `source` (what was posted)
        or what is in effect now, and its preview."""
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            stored = await self._overrides.stored(session, app, template, locale)
            if source is None:
                source = await self._overrides.editable(session, app, template, locale)
            preview = await self._preview(session, app, template, locale, source)
        return Editor(app, template, locale, source, overridden_parts(stored), preview)

    async def preview(self, app_id: str, template: TemplateName, locale: str, source: TemplateSource) -> Preview:
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            return await self._preview(session, app, template, locale, source)

    async def save(
        self, actor: str, app_id: str, template: TemplateName, locale: str, source: TemplateSource
    ) -> list[str]:
        """Store the parts that differ from the shipped default (the others follow it; none: the
        override is removed); which parts are stored. `TemplateRefused`, `TemplateFailsToRender`:
        nothing is stored."""
        check_source(self._overrides.store, template, source)
        changed = changed_parts(source, self._default(template))
        async with self._sessions.begin() as session:
            app = await get_app(session, app_id)
            row = await self._overrides.save(session, app, template, locale, changed, replace=True)
            parts = overridden_parts(row)
            audit.record(session, actor, "template.set", app.app_id, **_named(template, locale), parts=parts)
        return parts

    async def reset(self, actor: str, app_id: str, template: TemplateName, locale: str) -> bool:
        async with self._sessions.begin() as session:
            app = await get_app(session, app_id)
            removed = await self._overrides.reset(session, app, template, locale)
            audit.record(session, actor, "template.reset", app.app_id, **_named(template, locale), removed=removed)
        return removed

    async def send_test(
        self, actor: str, app_id: str, template: Email, locale: str, source: TemplateSource, to: str
    ) -> str:
        """Render the email (as posted, unsaved) with sample data and send it to `to` through the
        mailer's path; the address it went to. `TemplateRefused`, `TemplateFailsToRender`, and the
        mailer's `DeliveryFailure`."""
        check_source(self._overrides.store, template, source)
        async with self._sessions() as session:
            app = await get_app(session, app_id)
            context = (await self._overrides.sample_contexts(session, app, template, locale))[0]
        rendered = self._overrides.render(template, filled(source, self._default(template)), context)
        assert isinstance(rendered, RenderedEmail)
        address = await self._send_test_email(self._settings, rendered, to=to, template=template.value)
        async with self._sessions.begin() as session:
            audit.record(session, actor, "template.test-email", app.app_id, **_named(template, locale), to=address)
        return address

    def _default(self, template: TemplateName) -> TemplateSource:
        return self._overrides.store.default_source(template)

    async def _preview(self, session, app: App, template: TemplateName, locale: str, source: TemplateSource) -> Preview:
        """The template rendered with the first sample context (what a typical user gets)."""
        try:
            check_source(self._overrides.store, template, source)
            context = (await self._overrides.sample_contexts(session, app, template, locale))[0]
            rendered = self._overrides.render(template, filled(source, self._default(template)), context)
        except (TemplateRefused, TemplateFailsToRender) as problem:
            return Preview(error=str(problem))
        if isinstance(rendered, RenderedEmail):
            return Preview(subject=rendered.subject, text=rendered.text, html=rendered.html)
        return Preview(html=page_preview(rendered, self._settings.public_confirmation_url))
