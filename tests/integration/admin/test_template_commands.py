"""`userreg template set|show|reset`: overrides the services pick up on their next render."""

from __future__ import annotations

import asyncio
import time

import pytest

from userreg.shared.templates import Email, TemplateStore


@pytest.fixture
def files(tmp_path):
    def write(name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return str(path)

    return write


def test_an_email_override_replaces_the_parts_given_and_reset_restores_the_default(userreg, new_app, files):
    app_id = new_app()["appId"]
    default = userreg("template", "show", app_id, "confirmation")
    assert default.code == 0, default.err
    assert default.json["source"] == "default" and default.json["overridden"] == []
    assert default.json["subject"] and default.json["text"] and default.json["html"]

    subject = files("subject.txt", "Welcome to {{ app_name }}\n")
    text = files("body.txt", "Hi {{ user.name }}, confirm: {{ confirmation_url }}\n")
    stored = userreg("template", "set", app_id, "confirmation", "--subject-file", subject, "--text-file", text)
    assert stored.code == 0, stored.err
    assert stored.json["overridden"] == ["subject", "text"]

    shown = userreg("template", "show", app_id, "confirmation").json
    assert shown["source"] == "override" and shown["overrideLocale"] == "*"
    assert shown["subject"] == "Welcome to {{ app_name }}"
    assert shown["text"].startswith("Hi {{ user.name }}")
    assert shown["html"] == default.json["html"], "a part the override leaves out comes from the default"

    # A later `set` of one part keeps the others.
    html = files("body.html", "<p>Hello {{ user.name }}</p>")
    assert userreg("template", "set", app_id, "confirmation", "--html-file", html).json["overridden"] == [
        "subject",
        "text",
        "html",
    ]

    reset = userreg("template", "reset", app_id, "confirmation")
    assert reset.json["removed"] is True
    assert userreg("template", "show", app_id, "confirmation").json == default.json
    assert userreg("template", "reset", app_id, "confirmation").json["removed"] is False


def test_a_locale_override_wins_over_the_every_locale_one(userreg, new_app, files):
    app_id = new_app()["appId"]
    assert (
        userreg("template", "set", app_id, "registration", "--subject-file", files("all.txt", "For everyone")).code == 0
    )
    assert (
        userreg(
            "template",
            "set",
            app_id,
            "registration",
            "--locale",
            "EN",
            "--subject-file",
            files("en.txt", "For English"),
        ).code
        == 0
    )
    shown = userreg("template", "show", app_id, "registration", "--locale", "en").json
    assert (shown["subject"], shown["overrideLocale"]) == ("For English", "en")
    assert userreg("template", "reset", app_id, "registration", "--locale", "en").json["removed"] is True
    shown = userreg("template", "show", app_id, "registration", "--locale", "en").json
    assert (shown["subject"], shown["overrideLocale"]) == ("For everyone", "*")


def test_pages_have_only_an_html_part(userreg, new_app, files):
    app_id = new_app()["appId"]
    page = files("page.html", '<html><body data-page="confirmation-confirmed">Done, {{ app_name }}</body></html>')
    stored = userreg("template", "set", app_id, "confirmation-confirmed", "--html-file", page)
    assert stored.code == 0 and stored.json["overridden"] == ["html"]
    shown = userreg("template", "show", app_id, "confirmation-confirmed").json
    assert "subject" not in shown and "Done, {{ app_name }}" in shown["html"]
    refused = userreg("template", "set", app_id, "confirmation-confirmed", "--text-file", page)
    assert refused.code == 2 and "only an HTML part" in refused.err


def test_broken_or_unknown_templates_are_refused_and_nothing_is_stored(userreg, new_app, files, tmp_path):
    app_id = new_app()["appId"]
    cases = [
        (("confirmation", "--subject-file", files("bad.txt", "Hello {{ app_name")), "does not compile"),
        (("confirmation", "--html-file", files("bad.html", "{% if x %}open")), "does not compile"),
        (("confirmation", "--text-file", files("empty.txt", "  \n")), "the file is empty"),
        (("confirmation", "--text-file", str(tmp_path / "missing.txt")), "No such file"),
        (("confirmation", "--subject-file", files("two.txt", "one\ntwo")), "a subject is one line"),
        (("confirmation",), "give at least one of"),
        (("welcome", "--text-file", files("ok.txt", "hi")), "unknown template 'welcome'"),
        (("confirmation", "--locale", "xx", "--text-file", files("ok2.txt", "hi")), "no templates are shipped"),
        (("confirmation", "--locale", "not a locale", "--text-file", files("ok3.txt", "hi")), "--locale must"),
    ]
    for argv, message in cases:
        outcome = userreg("template", "set", app_id, *argv)
        assert outcome.code == 2 and message in outcome.err, (argv, outcome.err)
        assert "Traceback" not in outcome.err
    assert userreg("template", "show", app_id, "confirmation").json["source"] == "default"


async def test_the_services_render_the_override(auserreg, new_app, files, sessions):
    app_id = (await asyncio.to_thread(new_app))["appId"]
    text = files("body.txt", "Dear {{ user.name }}")
    assert (await auserreg("template", "set", app_id, "confirmation", "--text-file", text)).code == 0
    store = TemplateStore(render_seconds=1.0, output_bytes=64 * 1024)
    async with sessions() as session:
        source = await store.source(session, app_id, Email.CONFIRMATION, "en")
    assert store.render_email(source, {"user": {"name": "<Ann>"}, "app_name": "A"}).text == "Dear <Ann>"


def refused(outcome, reason: str) -> None:
    assert outcome.code == 1, (outcome.code, outcome.err)
    assert outcome.err.count("\n") == 1 and reason in outcome.err, outcome.err
    assert "nothing stored" in outcome.err and "Traceback" not in outcome.err


def test_a_template_that_breaks_a_render_limit_is_refused_and_nothing_is_stored(userreg, new_app, files, monkeypatch):
    monkeypatch.setenv("TEMPLATE_RENDER_SECONDS", "0.3")
    app_id = new_app(email_confirmation=True)["appId"]
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    bombs = [
        ("confirmation", "--text-file", "{{ 'a' * 10**10 }}", "TEMPLATE_OUTPUT_BYTES"),
        (
            "confirmation",
            "--html-file",
            "{% for i in range(100000) %}<p>{{ confirmation_url }}</p>{% endfor %}",
            "TEMPLATE_OUTPUT_BYTES",
        ),
        ("registration", "--subject-file", "{{ 10 ** (10 ** 10) }}", "bits"),
        # Big only with the user's data: the sample user has a value for every column of the schema.
        ("registration", "--text-file", "{{ 'x' * user.age * 100000 }}", "TEMPLATE_OUTPUT_BYTES"),
        (
            "confirmation-pending",
            "--html-file",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "TEMPLATE_RENDER_SECONDS (0.3 s)",
        ),
        # A bomb in a branch the page shows only sometimes: every way the page is shown is tried.
        (
            "confirmation-expired",
            "--html-file",
            "{% if resend == 'too_soon' %}{{ 'x'|center(10**9) }}{% endif %}expired",
            "TEMPLATE_OUTPUT_BYTES",
        ),
    ]
    for name, option, content, reason in bombs:
        started = time.monotonic()
        outcome = userreg("template", "set", app_id, name, option, files(f"{name}.part", content))
        refused(outcome, reason)
        assert "breaks a render limit with sample data" in outcome.err
        assert time.monotonic() - started < 5
        assert userreg("template", "show", app_id, name).json["source"] == "default", name


def test_a_template_that_fails_to_render_with_sample_data_is_refused(userreg, new_app, files):
    app_id = new_app(email_confirmation=True)["appId"]
    for name, option, content in [
        ("confirmation", "--text-file", "{{ user.name.__class__.__mro__ }}"),  # the sandbox refuses it
        ("confirmation", "--html-file", "{{ user.no_such_column.first }}"),
        ("confirmation-failed", "--html-file", "{{ 1 // (failure == 'nothing') }}"),
    ]:
        outcome = userreg("template", "set", app_id, name, option, files(f"{name}.part", content))
        refused(outcome, "fails to render with sample data")
        assert userreg("template", "show", app_id, name).json["source"] == "default"


def test_the_sample_data_is_what_the_services_give_the_template(userreg, new_app, files):
    app_id = new_app(email_confirmation=True)["appId"]
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    assert userreg("schema", "add", app_id, "member", "--type", "BOOLEAN").code == 0
    text = files(
        "body.txt",
        "{{ user.name }} ({{ user.age + 1 }}, {{ user.member and 'member' }}) "
        "{{ identity_name }}={{ identity_value }} {{ confirmation_url[:4] }} "
        "{{ expires_at[:2] }}{{ user.password.oops if user.password }}",
    )
    stored = userreg("template", "set", app_id, "confirmation", "--text-file", text)
    assert stored.code == 0, stored.err
    # The welcome email is also sent without a link (apps that do not confirm): both must render.
    welcome = files("welcome.txt", "{{ confirmation_url|length if confirmation_url else 'no link' }}")
    assert userreg("template", "set", app_id, "registration", "--text-file", welcome).code == 0
    page = files(
        "page.html",
        '<body data-page="{{ page }}">{{ user.name }} {{ identity_value }} '
        "{{ expires_at_text }} {{ new_link_expires_at_text }} "
        "{{ retry_after_seconds }}</body>",
    )
    for name in (
        "confirmation-pending",
        "confirmation-confirmed",
        "confirmation-expired",
        "confirmation-disabled",
        "confirmation-failed",
    ):
        assert userreg("template", "set", app_id, name, "--html-file", page).code == 0, name


async def test_the_limits_hold_when_the_command_runs_off_the_main_thread(auserreg, new_app, files, monkeypatch):
    monkeypatch.setenv("TEMPLATE_RENDER_SECONDS", "0.3")
    app_id = (await asyncio.to_thread(new_app))["appId"]
    bomb = files("loop.html", "{% set s = 'x' * 50000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}")
    started = time.monotonic()
    outcome = await auserreg("template", "set", app_id, "confirmation-confirmed", "--html-file", bomb)
    refused(outcome, "TEMPLATE_RENDER_SECONDS (0.3 s)")
    assert time.monotonic() - started < 5


def test_the_password_emails_are_shown_set_and_reset_like_the_others(userreg, new_app, files):
    app_id = new_app()["appId"]
    # One shipped default for every locale, its words marked for the catalogs that translate them.
    reset_subject = "{% trans %}Reset your password for {{ app_name }}{% endtrans %}"
    changed_subject = "{% trans %}Your password for {{ app_name }} was changed{% endtrans %}"
    subjects = {
        ("password-reset", "en"): reset_subject,
        ("password-reset", "de"): reset_subject,
        ("password-changed", "en"): changed_subject,
        ("password-changed", "de"): changed_subject,
    }
    for (name, locale), subject in subjects.items():
        shown = userreg("template", "show", app_id, name, "--kind", "email", "--locale", locale)
        assert shown.code == 0, shown.err
        assert (shown.json["source"], shown.json["subject"], shown.json["locale"]) == ("default", subject, locale)
        assert shown.json["text"] and 'extends "email-layout.html"' in shown.json["html"]
    # `password-reset` is a page too: the emails are named with their kind.
    assert "{{ reset_url }}" in userreg("template", "show", app_id, "password-reset", "--kind", "email").json["text"]
    assert (
        "{{ occurred_at }}" in userreg("template", "show", app_id, "password-changed", "--kind", "email").json["text"]
    )

    for name in ("password-reset", "password-changed"):
        stored = userreg(
            "template",
            "set",
            app_id,
            name,
            "--kind",
            "email",
            "--subject-file",
            files(f"{name}.txt", name + " for {{ user.name }}"),
        )
        assert stored.code == 0 and stored.json["overridden"] == ["subject"], stored.err
        shown = userreg("template", "show", app_id, name, "--kind", "email").json
        assert shown["source"] == "override" and shown["subject"] == name + " for {{ user.name }}"
        assert userreg("template", "reset", app_id, name, "--kind", "email").json["removed"] is True
        assert userreg("template", "show", app_id, name, "--kind", "email").json["source"] == "default"


def test_the_password_emails_sample_data_is_what_the_mailer_gives_them(userreg, new_app, files):
    app_id = new_app()["appId"]
    # The reset email's sample event carries a reset link (and its expiry), as registration publishes it.
    reset = files(
        "reset.txt",
        "{{ user.name }}: {{ reset_url|length }} {{ reset_url.split('/')[-2] }} "
        "{{ expires_at|length }} {{ expires_at_iso|length }} {{ occurred_at|length }} "
        "{{ identity_name }}={{ identity_value }}",
    )
    stored = userreg("template", "set", app_id, "password-reset", "--kind", "email", "--text-file", reset)
    assert stored.code == 0, stored.err
    # The notice's event carries no link at all: a template that needs one is refused.
    changed = files("changed.txt", "{{ user.name }} {{ occurred_at|length }} {{ identity_value }}")
    assert userreg("template", "set", app_id, "password-changed", "--kind", "email", "--text-file", changed).code == 0
    for name, variable in (
        ("password-changed", "reset_url"),
        ("password-changed", "confirmation_url"),
        ("password-reset", "confirmation_url"),
    ):
        needs_link = files(f"{name}-{variable}.txt", f"{{{{ {variable}|length }}}}")
        refused(
            userreg("template", "set", app_id, name, "--kind", "email", "--text-file", needs_link),
            "fails to render with sample data",
        )
    assert userreg("template", "show", app_id, "password-changed", "--kind", "email").json["overridden"] == ["text"]


def test_a_password_email_that_breaks_a_render_limit_is_refused(userreg, new_app, files, monkeypatch):
    monkeypatch.setenv("TEMPLATE_RENDER_SECONDS", "0.3")
    app_id = new_app()["appId"]
    assert userreg("schema", "add", app_id, "age", "--type", "INT").code == 0
    bombs = [
        (
            "password-reset",
            "--text-file",
            "{% for i in range(100000) %}{{ reset_url }}{% endfor %}",
            "TEMPLATE_OUTPUT_BYTES",
        ),
        ("password-reset", "--subject-file", "{{ 10 ** (10 ** 10) }}", "bits"),
        ("password-changed", "--html-file", "{{ 'x' * user.age * 100000 }}", "TEMPLATE_OUTPUT_BYTES"),
        (
            "password-changed",
            "--text-file",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "TEMPLATE_RENDER_SECONDS (0.3 s)",
        ),
    ]
    for name, option, content, reason in bombs:
        outcome = userreg("template", "set", app_id, name, "--kind", "email", option, files(f"{name}.part", content))
        refused(outcome, reason)
        assert "breaks a render limit with sample data" in outcome.err
        assert userreg("template", "show", app_id, name, "--kind", "email").json["source"] == "default", name


def test_password_reset_names_an_email_and_a_page_so_it_needs_its_kind(userreg, new_app, files):
    app_id = new_app()["appId"]
    page = files("page.html", '<body data-page="{{ page }}">{{ password_problem }} {{ reset_url }}</body>')
    subject = files("subject.txt", "Reset for {{ app_name }}")
    for argv in (("show",), ("reset",), ("set", "--html-file", page), ("show", "--locale", "de")):
        outcome = userreg("template", argv[0], app_id, "password-reset", *argv[1:])
        assert outcome.code == 2, (argv, outcome.err)
        assert (
            "both an email and a page" in outcome.err and "--kind email" in outcome.err and "--kind page" in outcome.err
        ), outcome.err
        assert "Traceback" not in outcome.err
    assert userreg("template", "set", app_id, "confirmation", "--kind", "page", "--html-file", page).code == 2
    unknown = userreg("template", "show", app_id, "confirmation-pending", "--kind", "email")
    assert unknown.code == 2 and "unknown email template 'confirmation-pending'" in unknown.err

    # The page's override and the email's are two, each shown, used and reset on its own.
    stored = userreg("template", "set", app_id, "password-reset", "--kind", "page", "--html-file", page)
    assert stored.code == 0, stored.err
    assert (stored.json["kind"], stored.json["name"], stored.json["overridden"]) == ("page", "password-reset", ["html"])
    stored = userreg("template", "set", app_id, "password-reset", "--kind", "email", "--subject-file", subject)
    assert stored.code == 0 and stored.json["kind"] == "email" and stored.json["overridden"] == ["subject"]
    shown_page = userreg("template", "show", app_id, "password-reset", "--kind", "page").json
    assert (shown_page["source"], shown_page["kind"]) == ("override", "page") and "subject" not in shown_page
    assert shown_page["html"] == '<body data-page="{{ page }}">{{ password_problem }} {{ reset_url }}</body>'
    shown_email = userreg("template", "show", app_id, "password-reset", "--kind", "email").json
    assert (shown_email["source"], shown_email["subject"]) == ("override", "Reset for {{ app_name }}")
    assert 'extends "email-layout.html"' in shown_email["html"], "the email's HTML is still its default"

    assert userreg("template", "reset", app_id, "password-reset", "--kind", "page").json["removed"] is True
    assert userreg("template", "show", app_id, "password-reset", "--kind", "page").json["source"] == "default"
    shown_email = userreg("template", "show", app_id, "password-reset", "--kind", "email").json
    assert shown_email["source"] == "override", "resetting the page leaves the email's override"


def test_a_page_override_of_password_reset_is_tried_with_the_pages_sample_data(userreg, new_app, files):
    app_id = new_app()["appId"]
    # The page has no subject, and its override is rendered each way the form is shown (`busy` among them).
    assert (
        userreg(
            "template", "set", app_id, "password-reset", "--kind", "page", "--subject-file", files("s.txt", "Hi")
        ).code
        == 2
    )
    needs_problem = files("form.html", "{{ 1 // (password_problem != 'busy') }}")
    refused(
        userreg("template", "set", app_id, "password-reset", "--kind", "page", "--html-file", needs_problem),
        "fails to render with sample data",
    )
    assert userreg("template", "show", app_id, "password-reset", "--kind", "page").json["source"] == "default"
