"""`userreg template set|show|preview|reset`: an app's overrides of the email and page templates.

Overrides are rows of the `templates` table; the mailer and confirmation-web read them on every
render, so a change is live at once, without a restart. `set` first renders the template the way
the services will, with sample data of the app (the variables of docs/api.md, Emails, a user with a value for every
column of its schema; for a page, each way confirmation-web shows it), under the render limits
(`TEMPLATE_RENDER_SECONDS`, `TEMPLATE_OUTPUT_BYTES`): a template that breaks one or fails to
render is refused and nothing is stored. All of that is `shared.template_overrides`' (the console's
editor stores overrides through it too); this module reads the operator's files and arguments.
`preview` renders the template in use (or files not stored yet) with that sample data, as the
console's editor previews it.

A template is named as the services name it; `password-reset` is both an email and a page, so it
needs `--kind email|page` (which any other name takes too). Each kind has its own overrides.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from userreg.admin.audit_log import record
from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed, UsageError
from userreg.admin.lookup import find_app
from userreg.confirmation_web.operations import sample_contexts
from userreg.mailer.operations import template_context
from userreg.shared import template_overrides
from userreg.shared.settings import Settings
from userreg.shared.template_overrides import (
    MAX_TEMPLATE_BYTES,
    TemplateFailsToRender,
    TemplateOverrides,
    TemplateRefused,
    check_source,
    overridden_parts,
)
from userreg.shared.template_samples import ContextBuilders
from userreg.shared.templates import (
    TEMPLATE_KINDS,
    AmbiguousTemplate,
    Email,
    Page,
    RenderedEmail,
    TemplateName,
    TemplateSource,
    TemplateStore,
    UnknownTemplate,
    kind_of,
    template_named,
)


def overrides(settings: Settings) -> TemplateOverrides:
    """The overrides, checked with the services' own variables (`ContextBuilders`)."""
    return TemplateOverrides(
        TemplateStore.from_settings(settings),
        settings,
        ContextBuilders(email_context=template_context, page_contexts=sample_contexts),
    )


def normalise_locale(raw: str | None) -> str:
    """--locale as overrides are stored under it ('' for every locale); `UsageError` for one that
    is not shipped (see `template_overrides.normalise_locale`)."""
    try:
        return template_overrides.normalise_locale(raw, label="--locale")
    except TemplateRefused as refused:
        raise UsageError(str(refused)) from None


def chosen_template(args: argparse.Namespace) -> TemplateName:
    """The template NAME (and --kind, when given) names; `UsageError` for an unknown one, and for
    a name both an email and a page have without --kind."""
    try:
        return template_named(args.name, args.kind)
    except UnknownTemplate:
        raise UsageError(
            f"unknown {args.kind + ' ' if args.kind else ''}template {args.name!r}; "
            f"emails: {', '.join(Email)}; pages: {', '.join(Page)}"
        ) from None
    except AmbiguousTemplate:
        raise UsageError(
            f"{args.name!r} is both an email and a page: give --kind email (the email) or --kind page (the page)"
        ) from None


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


def source_from_files(
    store: TemplateStore, template: TemplateName, subject_file: str | None, text_file: str | None, html_file: str | None
) -> TemplateSource:
    """The parts an operator gave, read and compiled; raises `UsageError` for a broken one."""
    is_email = isinstance(template, Email)
    if not is_email and (subject_file or text_file):
        raise UsageError(f"{template.value!r} is a page: it has only an HTML part (--html-file)")
    if not (subject_file or text_file or html_file):
        raise UsageError(
            "give at least one of --subject-file, --text-file, --html-file" if is_email else "give --html-file"
        )
    source = TemplateSource(
        subject=read_part(subject_file, "--subject-file"),
        text=read_part(text_file, "--text-file"),
        html=read_part(html_file, "--html-file"),
    )
    try:
        check_source(store, template, source)
    except TemplateRefused as refused:
        raise UsageError(str(refused)) from None
    return source


async def set_template(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    editor = overrides(settings)
    source = source_from_files(editor.store, template, args.subject_file, args.text_file, args.html_file)
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app)
        try:
            # Parts not given keep what an earlier override set.
            row = await editor.save(session, app, template, locale, source)
        except TemplateFailsToRender as failed:
            raise CommandFailed(str(failed)) from None
        # Which parts changed, not their text: the entry says what was done, the template says how.
        changed = [part for part in ("subject", "text", "html") if getattr(source, part) is not None]
        record(session, "template.set", app.app_id, **_named(template), locale=locale or None, parts=changed)
        return {"appId": app.app_id, **_named(template), "locale": locale or None, "overridden": overridden_parts(row)}


def _named(template: TemplateName) -> dict[str, str]:
    return {"kind": kind_of(template), "name": template.value}


async def show_template(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        # Without --locale, what a user without a locale gets.
        used, override, effective = await overrides(settings).shown(session, app, template, locale)
    result: dict[str, Any] = {
        "appId": app.app_id,
        **_named(template),
        "locale": effective,
        "source": "override" if override is not None else "default",
        "overrideLocale": None if override is None else (override.locale or "*"),
        "overridden": overridden_parts(override),
    }
    if isinstance(template, Email):
        result.update(subject=used.subject, text=used.text)
    result["html"] = used.html
    return result


async def preview_template(args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    editor = overrides(settings)
    given = None
    if args.subject_file or args.text_file or args.html_file:
        given = source_from_files(editor.store, template, args.subject_file, args.text_file, args.html_file)
    async with open_database(settings) as sessions, sessions() as session:
        app = await find_app(session, args.app)
        used, override, effective = await editor.shown(session, app, template, locale)
        # The first sample context: what a typical user gets (the console's preview shows the same).
        context = (await editor.sample_contexts(session, app, template, locale))[0]
    if given is not None:
        used = TemplateSource(
            subject=given.subject or used.subject, text=given.text or used.text, html=given.html or used.html
        )
    try:
        rendered = editor.render(template, used, context)
    except TemplateFailsToRender as failed:
        raise CommandFailed(str(failed)) from None
    result: dict[str, Any] = {
        "appId": app.app_id,
        **_named(template),
        "locale": effective,
        "source": "files" if given is not None else "override" if override is not None else "default",
    }
    if isinstance(rendered, RenderedEmail):
        result.update(subject=rendered.subject, text=rendered.text)
    html = rendered.html if isinstance(rendered, RenderedEmail) else rendered
    if args.html_out is None:
        result["html"] = html
    else:
        write_html(args.html_out, html)
        result["htmlFile"] = args.html_out
    return result


def write_html(path: str, html: str) -> None:
    try:
        Path(path).write_text(html, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--html-out {path}: {exc.strerror or exc}") from None


async def reset_template(args: argparse.Namespace, settings) -> dict[str, Any]:
    template = chosen_template(args)
    locale = normalise_locale(args.locale)
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await find_app(session, args.app)
        removed = await overrides(settings).reset(session, app, template, locale)
        record(session, "template.reset", app.app_id, **_named(template), locale=locale or None, removed=removed)
        return {"appId": app.app_id, **_named(template), "locale": locale or None, "removed": removed}


def register(commands: argparse._SubParsersAction) -> None:
    group = commands.add_parser(
        "template",
        help="override an app's email and page templates",
        description="Templates: emails "
        + ", ".join(Email)
        + " (subject, text, HTML) and pages "
        + ", ".join(Page)
        + " (HTML). password-reset is both: give --kind email or --kind page. Jinja2, "
        "sandboxed; HTML is autoescaped. Rendering is limited by TEMPLATE_RENDER_SECONDS and "
        "TEMPLATE_OUTPUT_BYTES; `set` tries a template with sample data first.",
    )
    sub = group.add_subparsers(dest="template_command", required=True, metavar="COMMAND")

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("app", metavar="APP", help="appId or name")
        parser.add_argument("name", metavar="NAME", help="template name")
        parser.add_argument(
            "--kind", choices=TEMPLATE_KINDS, help="email or page: needed only for a name that is both (password-reset)"
        )
        parser.add_argument("--locale", metavar="L", help="a shipped locale; without it, every locale")

    parser = sub.add_parser(
        "set",
        help="store an override from files (parts not given keep their value), "
        "once it renders with sample data within the limits",
    )
    common(parser)
    parser.add_argument("--subject-file", metavar="F", help="email subject (one line)")
    parser.add_argument("--text-file", metavar="F", help="email plain-text body")
    parser.add_argument("--html-file", metavar="F", help="email HTML body, or the page")
    parser.set_defaults(handler=set_template)

    parser = sub.add_parser("show", help="the template in use, saying whether it is an override or the default")
    common(parser)
    parser.set_defaults(handler=show_template)

    parser = sub.add_parser(
        "preview",
        help="render the template in use with sample data: subject and text (JSON), HTML to a file",
        description="Render the template the app's users of --locale get (the override or the shipped "
        "default) with sample data, by the services' sandboxed renderer under the render limits: prints the "
        "subject and text of an email as JSON and writes the HTML (an email's, or the page) to --html-out "
        "(without it, the HTML is in the JSON too). --subject-file, --text-file, --html-file preview parts "
        "not stored yet in place of the stored ones.",
    )
    common(parser)
    parser.add_argument("--html-out", metavar="FILE", help="write the rendered HTML to this file")
    parser.add_argument("--subject-file", metavar="F", help="an email subject to preview instead")
    parser.add_argument("--text-file", metavar="F", help="an email plain-text body to preview instead")
    parser.add_argument("--html-file", metavar="F", help="an email HTML body or a page to preview instead")
    parser.set_defaults(handler=preview_template)

    parser = sub.add_parser("reset", help="remove an override: the shipped default is used again")
    common(parser)
    parser.set_defaults(handler=reset_template)
