"""`userreg template set|show|reset`: overrides the services pick up on their next render."""

from __future__ import annotations

import asyncio

import pytest

from userreg.shared.templates import TemplateStore


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
    assert userreg("template", "set", app_id, "confirmation", "--html-file", html).json["overridden"] == \
        ["subject", "text", "html"]

    reset = userreg("template", "reset", app_id, "confirmation")
    assert reset.json["removed"] is True
    assert userreg("template", "show", app_id, "confirmation").json == default.json
    assert userreg("template", "reset", app_id, "confirmation").json["removed"] is False


def test_a_locale_override_wins_over_the_every_locale_one(userreg, new_app, files):
    app_id = new_app()["appId"]
    assert userreg("template", "set", app_id, "registration", "--subject-file",
                   files("all.txt", "For everyone")).code == 0
    assert userreg("template", "set", app_id, "registration", "--locale", "EN", "--subject-file",
                   files("en.txt", "For English")).code == 0
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
    store = TemplateStore()
    async with sessions() as session:
        source = await store.source(session, app_id, "confirmation", "en")
    assert store.render_email(source, {"user": {"name": "<Ann>"}, "app_name": "A"}).text == "Dear <Ann>"
