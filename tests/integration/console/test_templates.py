"""The Email templates & pages: the list by language; the editor with its preview rendered with
sample data by the services' sandboxed renderer (in a sandboxed frame; JSON for the live refresh;
the Preview button without script); save (only what differs from the default; what the services
then render), syntax errors and render-limit breaches shown and not saved; reset to the default;
a test email through the mailer's path into the local inbox; audit entries; CSRF refused;
template text shown escaped."""

from __future__ import annotations

import html
import re

from markupsafe import escape
from sqlalchemy import select

from userreg.inbox import Inbox
from userreg.shared.db.models import AuditEntry, Template
from userreg.shared.templates import Email, Page, TemplateStore

CONFIRMATION = "/templates/email/confirmation"


def srcdoc(text: str) -> str:
    found = re.search(
        r'<iframe id="preview-frame" class="preview-frame" sandbox="" title="[^"]*" srcdoc="([^"]*)"', text
    )
    assert found is not None, "no sandboxed preview frame"
    return html.unescape(found[1])


async def overrides_of(sessions, app_id: str) -> list[Template]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(Template).where(Template.app_id == app_id).order_by(Template.name, Template.locale)
            )
        )


async def actions_of(sessions, app_id: str) -> list[tuple[str, dict]]:
    async with sessions() as session:
        entries = await session.scalars(select(AuditEntry).where(AuditEntry.app_id == app_id).order_by(AuditEntry.id))
        return [(entry.action, entry.details) for entry in entries]


async def test_the_list_shows_every_email_and_page_by_language(client, make_app):
    app = await make_app()
    page = await client.get(f"/apps/{app.app_id}/templates")
    assert page.status == 200 and 'data-page="templates"' in page.text
    for template in (*Email, *Page):
        kind = "email" if isinstance(template, Email) else "page"
        for locale in ("", "en", "de"):
            assert f'/templates/{kind}/{template.value}?locale={locale}"' in page.text


async def test_the_editor_shows_the_template_in_use_and_its_preview(client, make_app, settings):
    app = await make_app("Preview <App>")
    page = await client.get(f"/apps/{app.app_id}{CONFIRMATION}?locale=en")
    assert page.status == 200 and 'data-page="template-editor"' in page.text
    default = TemplateStore.from_settings(settings).default_source(Email.CONFIRMATION)
    assert html.escape(default.text, quote=False) in page.text
    preview = srcdoc(page.text)
    assert "Confirm your email address" in preview and "http://confirm.test.invalid/" in preview
    assert "Preview &lt;App&gt;" in preview, "sample data is escaped inside the HTML part too"
    assert 'id="preview-subject">Confirm your email address for Preview &lt;App&gt;' in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "style-src-attr 'unsafe-inline'" in csp and "script-src 'self' 'nonce-" in csp
    assert (await client.get(f"/apps/{app.app_id}/templates/email/welcome")).status == 404
    assert (await client.get(f"/apps/{app.app_id}{CONFIRMATION}?locale=xx")).status == 404


async def test_the_preview_renders_what_is_posted_without_saving_it(client, make_app, sessions):
    app = await make_app()
    fields = {
        "locale": "",
        "subject": "Hi {{ user.name }}",
        "text": "Text for {{ app_name }}",
        "html": "<p>Dear {{ user.name }}, <a href='{{ confirmation_url }}'>confirm</a></p>",
    }
    page = await client.post(f"/apps/{app.app_id}{CONFIRMATION}/preview", fields)
    assert page.status == 200 and 'data-page="template-editor"' in page.text
    assert "<p>Dear Ann Example, <a href='http://confirm.test.invalid/" in srcdoc(page.text)
    assert 'id="preview-subject">Hi Ann Example<' in page.text
    as_json = await client.http.post(
        client.url(f"/apps/{app.app_id}{CONFIRMATION}/preview"),
        data={**fields, "csrf_token": client.csrf_token},
        headers={"Accept": "application/json"},
    )
    preview = await as_json.json()
    assert as_json.status == 200 and preview["error"] is None and preview["subject"] == "Hi Ann Example"
    assert preview["text"] == f"Text for {app.name}" and "Dear Ann Example" in preview["html"]
    broken = await client.http.post(
        client.url(f"/apps/{app.app_id}{CONFIRMATION}/preview"),
        data={**fields, "html": "{% if %}", "csrf_token": client.csrf_token},
        headers={"Accept": "application/json"},
    )
    assert "does not compile" in (await broken.json())["error"]
    assert await overrides_of(sessions, app.app_id) == []
    no_token = await client.post(f"/apps/{app.app_id}{CONFIRMATION}/preview", fields, csrf=False)
    assert no_token.status == 403


async def test_saving_stores_what_differs_from_the_default_and_the_services_render_it(
    client, make_app, sessions, settings
):
    app = await make_app()
    store = TemplateStore.from_settings(settings)
    default = store.default_source(Email.CONFIRMATION)
    page = await client.post(
        f"/apps/{app.app_id}{CONFIRMATION}",
        {
            "locale": "de",
            "subject": "Willkommen, {{ user.name }}",
            "text": default.text,
            "html": default.html.replace("\n", "\r\n"),
        },
    )
    assert page.status == 200 and "The template was saved" in page.text and page.url.endswith("locale=de&notice=saved")
    [row] = await overrides_of(sessions, app.app_id)
    assert (row.kind, row.name, row.locale) == ("email", "confirmation", "de")
    assert (row.subject, row.text_body, row.html_body) == ("Willkommen, {{ user.name }}", None, None)
    async with sessions() as session:
        used = await store.source(session, app.app_id, Email.CONFIRMATION, "de-AT")
    assert store.render_email(used, {"user": {"name": "Jo"}, "app_name": "A"}).subject == "Willkommen, Jo"
    [(action, details)] = await actions_of(sessions, app.app_id)
    assert action == "template.set" and details == {
        "kind": "email",
        "name": "confirmation",
        "locale": "de",
        "parts": ["subject"],
    }
    # Saving the default again removes the override.
    back = await client.post(
        f"/apps/{app.app_id}{CONFIRMATION}",
        {"locale": "de", "subject": default.subject, "text": default.text, "html": default.html},
    )
    assert "The template is the default again" in back.text and await overrides_of(sessions, app.app_id) == []


async def test_a_page_template_is_saved_and_previewed_with_confirmation_webs_base(client, make_app, sessions):
    app = await make_app()
    path = f"/apps/{app.app_id}/templates/page/confirmation-confirmed"
    page = await client.post(
        path,
        {
            "locale": "",
            "html": '<html><head></head><body data-page="{{ page }}">Done, {{ identity_value }}</body></html>',
        },
    )
    assert page.status == 200 and "The template was saved" in page.text
    preview = srcdoc(page.text)
    assert preview.startswith('<html><head><base href="http://confirm.test.invalid/">')
    assert "Done, ann.example@example.com" in preview
    [row] = await overrides_of(sessions, app.app_id)
    assert (row.kind, row.subject, row.text_body) == ("page", None, None)
    reset = await client.post(f"{path}/reset", {"locale": ""})
    assert reset.status == 200 and "The override was removed" in reset.text
    assert await overrides_of(sessions, app.app_id) == []
    assert [action for action, _ in await actions_of(sessions, app.app_id)] == ["template.set", "template.reset"]


async def test_broken_templates_are_shown_and_not_saved(client, make_app, sessions, start_console, http_client_for):
    app = await make_app()
    cases = [
        ({"html": "{% if x %}open"}, 400, "does not compile"),
        ({"subject": "one\ntwo"}, 400, "a subject is one line"),
        ({"text": "{{ user.name.__class__.__mro__ }}"}, 400, "fails to render with sample data, nothing stored"),
        ({"text": "{{ 'a' * 10**10 }}"}, 400, "breaks a render limit with sample data, nothing stored"),
    ]
    for fields, status, message in cases:
        page = await client.post(f"/apps/{app.app_id}{CONFIRMATION}", {"locale": "", **fields})
        assert page.status == status and message in html.unescape(page.text), (fields, page.text[-2000:])
        assert "Not saved:" in page.text
        for value in fields.values():
            assert str(escape(value)) in page.text, "what was typed stays in the editor"
    slow = await http_client_for(await start_console({"template_render_seconds": 0.3}))
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    page = await slow.post(f"/apps/{app.app_id}/templates/page/confirmation-pending", {"locale": "", "html": loop})
    assert page.status == 400 and "TEMPLATE_RENDER_SECONDS (0.3 s)" in page.text
    assert await overrides_of(sessions, app.app_id) == [] and await actions_of(sessions, app.app_id) == []


async def test_template_text_is_shown_escaped(client, make_app, sessions):
    app = await make_app()
    script = '<script>alert("x")</script>'
    page = await client.post(
        f"/apps/{app.app_id}{CONFIRMATION}",
        {"locale": "", "text": f"Hi {script}", "html": f"<p>{{{{ '{script}' }}}}</p>"},
    )
    assert page.status == 200
    assert script not in page.text and str(escape(f"Hi {script}")) in page.text
    # The HTML part escapes what a template prints, and the whole preview is the frame's attribute.
    assert "&lt;script&gt;" in srcdoc(page.text) and "<script>" not in srcdoc(page.text)


async def test_a_test_email_goes_through_the_mailer_into_the_inbox(make_app, sessions, start_console, http_client_for):
    app = await make_app("Inbox App")
    async with Inbox(smtp_port=0, http_port=None) as inbox:
        client = await http_client_for(
            await start_console({"smtp_port": inbox.smtp_port, "mail_from": "Console <console@example.com>"})
        )
        page = await client.post(
            f"/apps/{app.app_id}{CONFIRMATION}/test-email",
            {
                "locale": "",
                "subject": "Test for {{ app_name }}",
                "text": "Hello {{ user.name }}",
                "html": "",
                "to": "Ops@Example.com",
            },
        )
        assert page.status == 200 and "A test email was sent to Ops@example.com." in page.text
        [message] = await inbox.wait_for(lambda message: "Ops@example.com" in message.recipients)
    assert message.subject == "Test for Inbox App" and message.text.strip() == "Hello Ann Example"
    assert "Confirm your email address" in message.html, "a part left empty is the default's"
    assert message.mail_from == "console@example.com" and "test-confirmation@example.com>" in message.message_id
    assert await overrides_of(sessions, app.app_id) == [], "a test email saves nothing"
    [(action, details)] = await actions_of(sessions, app.app_id)
    assert action == "template.test-email" and details["to"] == "Ops@example.com"


async def test_a_test_email_that_cannot_be_sent_says_why(client, make_app, start_console, http_client_for):
    app = await make_app()
    bad = await client.post(f"/apps/{app.app_id}{CONFIRMATION}/test-email", {"locale": "", "to": "not an address"})
    assert bad.status == 400 and "Not sent: invalid recipient address" in bad.text
    away = await http_client_for(await start_console({"smtp_port": 9, "smtp_timeout": 2}))
    page = await away.post(f"/apps/{app.app_id}{CONFIRMATION}/test-email", {"locale": "", "to": "ops@example.com"})
    assert page.status == 503 and "Not sent:" in page.text
