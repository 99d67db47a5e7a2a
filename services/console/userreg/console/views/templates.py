"""The Email templates & pages of an app: the list of emails and pages by language; the editor
(subject, text and HTML of an email, HTML of a page) with its preview beside it in a sandboxed
frame, which a little script refreshes as one types (`/static/templates.js`; without it the Preview
button posts the form); save, reset to the default, and "send a test email". A template that does
not compile or breaks a render limit is shown with its error, not saved."""

from __future__ import annotations

from aiohttp import web

from userreg.confirmation_web.operations import sample_contexts
from userreg.console.keys import SESSIONS, SETTINGS, TEMPLATE_STORE
from userreg.console.rules.templates import language_name, posted_source, preview_csp
from userreg.console.service.templates import Editor, Templates
from userreg.console.views.common import actor, operator, posted, render, see_other
from userreg.mailer.operations import DeliveryFailure, send_test_email, template_context
from userreg.shared.template_overrides import (
    TemplateFailsToRender,
    TemplateOverrides,
    TemplateRefused,
    normalise_locale,
)
from userreg.shared.template_samples import ContextBuilders
from userreg.shared.templates import (
    Email,
    TemplateName,
    TemplateSource,
    UnknownTemplate,
    available_locales,
    template_named,
)

TEMPLATES = web.AppKey("console_templates", Templates)
NOTICES = {
    "saved": "The template was saved; emails and pages use it from now on.",
    "saved-default": "The template is the default again: nothing differed from it.",
    "reset": "The override was removed: the default is used again.",
}


def build(app: web.Application) -> None:
    settings = app[SETTINGS]
    overrides = TemplateOverrides(
        app[TEMPLATE_STORE], settings, ContextBuilders(email_context=template_context, page_contexts=sample_contexts)
    )
    app[TEMPLATES] = Templates(app[SESSIONS], overrides, settings, send_test_email)


def _template(request: web.Request) -> TemplateName:
    try:
        return template_named(request.match_info["name"], request.match_info["kind"])
    except (UnknownTemplate, ValueError):
        raise web.HTTPNotFound() from None


def _locale(raw: str | None) -> str:
    try:
        return normalise_locale(raw)
    except TemplateRefused:
        raise web.HTTPNotFound() from None


def _path(editor_app_id: str, template: TemplateName, suffix: str = "") -> str:
    kind = "email" if isinstance(template, Email) else "page"
    return f"/apps/{editor_app_id}/templates/{kind}/{template.value}{suffix}"


def _languages() -> list[tuple[str, str]]:
    """(locale, name) of what an operator edits: all languages at once, then each shipped one."""
    return [("", language_name(""))] + [(code, language_name(code)) for code in available_locales()]


def _editor_page(
    request: web.Request,
    editor: Editor,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    to: str | None = None,
) -> web.Response:
    return render(
        request,
        "template_editor.html",
        status=status,
        app=editor.app,
        editor=editor,
        is_email=isinstance(editor.template, Email),
        editor_path=_path(editor.app.app_id, editor.template),
        locales=_languages(),
        language=language_name(editor.locale),
        error=error,
        notice=notice,
        to=operator(request).email if to is None else to,
        csp=preview_csp(request.app[SETTINGS].public_confirmation_url),
    )


async def templates_page(request: web.Request) -> web.Response:
    app, entries = await request.app[TEMPLATES].catalogue(request.match_info["app_id"])
    return render(request, "templates.html", app=app, entries=entries, locales=_languages())


async def editor_page(request: web.Request) -> web.Response:
    template, locale = _template(request), _locale(request.query.get("locale"))
    editor = await request.app[TEMPLATES].editor(request.match_info["app_id"], template, locale)
    return _editor_page(request, editor, notice=NOTICES.get(request.query.get("notice", "")))


async def _posted(request: web.Request, template: TemplateName) -> tuple[str, TemplateSource, str]:
    locale, subject, text, html, to = await posted(request, "locale", "subject", "text", "html", "to")
    return _locale(locale), posted_source(subject, text, html, is_email=isinstance(template, Email)), to.strip()


async def save_template(request: web.Request) -> web.Response:
    template = _template(request)
    app_id = request.match_info["app_id"]
    locale, source, to = await _posted(request, template)
    try:
        parts = await request.app[TEMPLATES].save(actor(request), app_id, template, locale, source)
    except (TemplateRefused, TemplateFailsToRender) as refused:
        editor = await request.app[TEMPLATES].editor(app_id, template, locale, source)
        return _editor_page(request, editor, status=400, error=f"Not saved: {refused}", to=to)
    see_other(_path(app_id, template, f"?locale={locale}&notice={'saved' if parts else 'saved-default'}"))


async def preview_template(request: web.Request) -> web.Response:
    """The preview of what was posted: JSON for the editor's script, else the editor page again."""
    template = _template(request)
    app_id = request.match_info["app_id"]
    locale, source, to = await _posted(request, template)
    if "application/json" in request.headers.get("Accept", ""):
        preview = await request.app[TEMPLATES].preview(app_id, template, locale, source)
        return web.json_response(preview.as_json(), headers={"Cache-Control": "no-store"})
    editor = await request.app[TEMPLATES].editor(app_id, template, locale, source)
    return _editor_page(request, editor, to=to)


async def send_test_email_view(request: web.Request) -> web.Response:
    template = _template(request)
    app_id = request.match_info["app_id"]
    locale, source, to = await _posted(request, template)
    templates = request.app[TEMPLATES]
    if not isinstance(template, Email):
        raise web.HTTPNotFound()
    status, error, notice = 200, None, None
    try:
        address = await templates.send_test(actor(request), app_id, template, locale, source, to)
        notice = f"A test email was sent to {address}."
    except (TemplateRefused, TemplateFailsToRender) as refused:
        status, error = 400, f"Not sent: {refused}"
    except DeliveryFailure as failure:
        status, error = (503 if failure.transient else 400), f"Not sent: {failure.reason}"
    editor = await templates.editor(app_id, template, locale, source)
    return _editor_page(request, editor, status=status, error=error, notice=notice, to=to)


async def reset_template(request: web.Request) -> web.Response:
    template = _template(request)
    app_id = request.match_info["app_id"]
    [locale] = await posted(request, "locale")
    locale = _locale(locale)
    await request.app[TEMPLATES].reset(actor(request), app_id, template, locale)
    see_other(_path(app_id, template, f"?locale={locale}&notice=reset"))


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/apps/{app_id}/templates", templates_page, name="templates")
    router.add_get("/apps/{app_id}/templates/{kind}/{name}", editor_page, name="template_editor")
    router.add_post("/apps/{app_id}/templates/{kind}/{name}", save_template, name="template_save")
    router.add_post("/apps/{app_id}/templates/{kind}/{name}/preview", preview_template, name="template_preview")
    router.add_post(
        "/apps/{app_id}/templates/{kind}/{name}/test-email", send_test_email_view, name="template_test_email"
    )
    router.add_post("/apps/{app_id}/templates/{kind}/{name}/reset", reset_template, name="template_reset")
