"""`userreg template set|show|reset`: an app's overrides of the email and page templates (SPEC §5, §6).

Overrides are rows of the `templates` table; the mailer and confirmation-web read them on every
render, so a change is live at once, without a restart. `set` first renders the template the way
the services will, with sample data of the app (SPEC §5's variables, a user with a value for every
column of its schema; for a page, each way confirmation-web shows it), under the render limits
(`TEMPLATE_RENDER_SECONDS`, `TEMPLATE_OUTPUT_BYTES`): a template that breaks one or fails to
render is refused and nothing is stored.

A template is named as the services name it; `password-reset` is both an email and a page, so it
needs `--kind email|page` (which any other name takes too). Each kind has its own overrides.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import TemplateSyntaxError
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.dialects.postgresql import insert

from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.admin.template_samples import sample_contexts_of
from userreg.shared.apps import schema_of
from userreg.shared.db.models import App, Template
from userreg.shared.settings import Settings
from userreg.shared.templates import (
    TEMPLATE_KINDS,
    AmbiguousTemplate,
    Email,
    Page,
    TemplateLimitExceeded,
    TemplateName,
    TemplateSource,
    TemplateStore,
    UnknownTemplate,
    available_locales,
    kind_of,
    pick_locale,
    template_named,
)

LOCALE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
MAX_TEMPLATE_BYTES = 256 * 1024


def normalise_locale(raw: str | None) -> str:
    """The locale an override is stored under: '' (every locale) or a shipped one, lower-case with '-'.
    The services pick the best shipped locale for a user, so an override for a locale that is not
    shipped would never be used: it is refused rather than silently ignored."""
    if raw is None or not raw.strip():
        return ""
    locale = raw.strip().replace("_", "-").lower()
    if not LOCALE.fullmatch(locale):
        raise UsageError(f"--locale must look like 'en' or 'pt-br', got {raw!r}")
    shipped = available_locales()
    if locale not in shipped:
        raise UsageError(f"no templates are shipped for locale {locale!r}; use one of {', '.join(shipped)}"
                         " or leave --locale out to override every locale")
    return locale


def chosen_template(args: argparse.Namespace) -> TemplateName:
    """The template NAME (and --kind, when given) names; `UsageError` for an unknown one, and for
    a name both an email and a page have without --kind."""
    try:
        return template_named(args.name, args.kind)
    except UnknownTemplate:
        raise UsageError(f"unknown {args.kind + ' ' if args.kind else ''}template {args.name!r}; "
                         f"emails: {', '.join(Email)}; pages: {', '.join(Page)}") from None
    except AmbiguousTemplate:
        raise UsageError(f"{args.name!r} is both an email and a page: give --kind email (the email) "
                         f"or --kind page (the page)") from None


def overrides_of(app: App, template: TemplateName) -> tuple[ColumnElement[bool], ...]:
    """The WHERE clause of the app's overrides of `template` (those of every locale): by kind and
    name, as an email and a page may share a name."""
    return (Template.app_id == app.app_id, Template.kind == kind_of(template),
            Template.name == template.value)


def read_part(path: str | None, option: str) -> str | None:
    if path is None:
        return None
    file = Path(path)
    try:
        if file.stat().st_size > MAX_TEMPLATE_BYTES:
            raise UsageError(f"{option} {path}: larger than {MAX_TEMPLATE_BYTES // 1024} KiB")
        content = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{option} {path}: not UTF-8 text") from None
    if not content.strip():
        raise UsageError(f"{option} {path}: the file is empty")
    return content


def source_from_files(store: TemplateStore, template: TemplateName, subject_file: str | None,
                      text_file: str | None, html_file: str | None) -> TemplateSource:
    """The parts an operator gave, read and compiled; raises `UsageError` for a broken one."""
    is_email = isinstance(template, Email)
    if not is_email and (subject_file or text_file):
        raise UsageError(f"{template.value!r} is a page: it has only an HTML part (--html-file)")
    if not (subject_file or text_file or html_file):
        raise UsageError("give at least one of --subject-file, --text-file, --html-file"
                         if is_email else "give --html-file")
    source = TemplateSource(subject=read_part(subject_file, "--subject-file"),
                            text=read_part(text_file, "--text-file"),
                            html=read_part(html_file, "--html-file"))
    if source.subject is not None and len(source.subject.strip().splitlines()) > 1:
        raise UsageError("--subject-file: a subject is one line")
    try:
        store.check(template, source)
    except TemplateSyntaxError as exc:
        raise UsageError(f"template {template.value!r} does not compile: {exc.message} "
                         f"(line {exc.lineno})") from None
    return source


async def set_template(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    store = TemplateStore.from_settings(settings)
    source = source_from_files(store, template, args.subject_file, args.text_file, args.html_file)
    given = {"subject": source.subject and source.subject.strip(), "text_body": source.text,
             "html_body": source.html}
    given = {column: value for column, value in given.items() if value is not None}
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app)
        stored = (await session.execute(
            select(Template.subject, Template.text_body, Template.html_body).where(
                *overrides_of(app, template), Template.locale == locale))).first()
        subject, text, html = stored or (None, None, None)
        # What the services will render: the parts given, the others from the earlier override or
        # the shipped default (as `TemplateStore.source` merges them).
        shipped_locale = pick_locale(locale or None)
        default = store.default_source(template, shipped_locale)
        effective = TemplateSource(subject=given.get("subject") or subject or default.subject,
                                   text=given.get("text_body") or text or default.text,
                                   html=given.get("html_body") or html or default.html)
        columns = (await schema_of(session, app.app_id)).values()
        samples = sample_contexts_of(app, template, columns, shipped_locale, settings)
        try_with_sample_data(store, template, effective, samples)
        # Parts not given keep what an earlier override set.
        statement = insert(Template).values(app_id=app.app_id, kind=kind_of(template), name=template.value,
                                            locale=locale, **given)
        await session.execute(statement.on_conflict_do_update(
            index_elements=[Template.app_id, Template.kind, Template.name, Template.locale],
            set_={**given, "updated_at": func.now()},
        ))
        row = await session.scalar(select(Template).where(*overrides_of(app, template),
                                                          Template.locale == locale))
        return {"appId": app.app_id, **_named(template), "locale": locale or None,
                "overridden": _overridden_parts(row)}


def try_with_sample_data(store: TemplateStore, template: TemplateName, source: TemplateSource,
                         contexts: Iterable[dict[str, Any]]) -> None:
    """Render the template with each sample context, under the services' limits; `CommandFailed`
    (exit 1) naming the limit or the error when it cannot be rendered."""
    name = template.value
    for context in contexts:
        try:
            if isinstance(template, Email):
                store.render_email(source, context)
            else:
                store.render_page(source, context)
        except TemplateLimitExceeded as exc:
            raise CommandFailed(f"template {name!r} breaks a render limit with sample data, nothing stored: "
                                f"{exc.reason}") from None
        except Exception as exc:  # an operator's template may fail in any way
            problem = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            raise CommandFailed(f"template {name!r} fails to render with sample data, nothing stored: "
                                f"{problem}") from None


def _named(template: TemplateName) -> dict[str, str]:
    return {"kind": kind_of(template), "name": template.value}


def _overridden_parts(row: Template | None) -> list[str]:
    if row is None:
        return []
    parts = (("subject", row.subject), ("text", row.text_body), ("html", row.html_body))
    return [part for part, value in parts if value]


async def show_template(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    store = TemplateStore.from_settings(settings)
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        # The same resolution the services use: the locale's override, else the every-locale one;
        # without --locale, what a user without a locale gets.
        effective = pick_locale(locale or None)
        rows = {row.locale: row for row in await session.scalars(select(Template).where(
            *overrides_of(app, template), Template.locale.in_((effective, ""))))}
        override = rows.get(effective) or rows.get("")
        used = await store.source(session, app.app_id, template, effective)
    result: dict[str, Any] = {
        "appId": app.app_id, **_named(template), "locale": effective,
        "source": "override" if override is not None else "default",
        "overrideLocale": None if override is None else (override.locale or "*"),
        "overridden": _overridden_parts(override),
    }
    if isinstance(template, Email):
        result.update(subject=used.subject, text=used.text)
    result["html"] = used.html
    return result


async def reset_template(args: argparse.Namespace, settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app)
        result = await session.execute(delete(Template).where(*overrides_of(app, template),
                                                              Template.locale == locale))
        return {"appId": app.app_id, **_named(template), "locale": locale or None,
                "removed": result.rowcount > 0}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "template", help="override an app's email and page templates",
        description="Templates: emails " + ", ".join(Email) + " (subject, text, HTML) and pages "
        + ", ".join(Page) + " (HTML). password-reset is both: give --kind email or --kind page. Jinja2, "
        "sandboxed; HTML is autoescaped. Rendering is limited by TEMPLATE_RENDER_SECONDS and "
        "TEMPLATE_OUTPUT_BYTES; `set` tries a template with sample data first.")
    sub = group.add_subparsers(dest="template_command", required=True, metavar="COMMAND")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("app", metavar="APP", help="appId or name")
        parser.add_argument("name", metavar="NAME", help="template name")
        parser.add_argument("--kind", choices=TEMPLATE_KINDS,
                            help="email or page: needed only for a name that is both (password-reset)")
        parser.add_argument("--locale", metavar="L", help="a shipped locale; without it, every locale")

    parser = sub.add_parser("set", help="store an override from files (parts not given keep their value), "
                            "once it renders with sample data within the limits")
    common(parser)
    parser.add_argument("--subject-file", metavar="F", help="email subject (one line)")
    parser.add_argument("--text-file", metavar="F", help="email plain-text body")
    parser.add_argument("--html-file", metavar="F", help="email HTML body, or the page")
    parser.set_defaults(handler=set_template)

    parser = sub.add_parser("show", help="the template in use, saying whether it is an override or the default")
    common(parser)
    parser.set_defaults(handler=show_template)

    parser = sub.add_parser("reset", help="remove an override: the shipped default is used again")
    common(parser)
    parser.set_defaults(handler=reset_template)
