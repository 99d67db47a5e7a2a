"""`userreg template preview`: the template in use rendered with sample data, by the services'
sandboxed renderer; the HTML written to a file."""

from __future__ import annotations

import pytest


@pytest.fixture
def files(tmp_path):
    def write(name: str, content: str) -> str:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return str(path)

    return write


def test_an_email_preview_prints_subject_and_text_and_writes_the_html(userreg, new_app, tmp_path, settings):
    app = new_app(email_confirmation=True)
    out = tmp_path / "confirmation.html"
    preview = userreg("template", "preview", app["name"], "confirmation", "--html-out", out)
    assert preview.code == 0, preview.err
    shown = preview.json
    assert {key: shown[key] for key in ("appId", "kind", "name", "locale", "source", "htmlFile")} == {
        "appId": app["appId"],
        "kind": "email",
        "name": "confirmation",
        "locale": "en",
        "source": "default",
        "htmlFile": str(out),
    }
    assert "html" not in shown and "{{" not in shown["subject"] + shown["text"]
    link = f"{settings.public_confirmation_url}/{app['appId']}/confirm/"
    assert link in shown["text"]
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith(("<!doctype", "<html")) and link in html


def test_the_preview_follows_the_override_and_the_locale(userreg, new_app, files):
    app_id = new_app()["appId"]
    assert (
        userreg(
            "template",
            "set",
            app_id,
            "registration",
            "--locale",
            "de",
            "--subject-file",
            files("s.txt", "Willkommen bei {{ app_name }}, {{ user.name }}"),
        ).code
        == 0
    )
    german = userreg("template", "preview", app_id, "registration", "--locale", "de").json
    assert german["source"] == "override" and german["locale"] == "de"
    assert german["subject"].startswith("Willkommen bei app-") and german["subject"].endswith(", Ann Example")
    assert "<" in german["html"]  # without --html-out the HTML is in the JSON
    english = userreg("template", "preview", app_id, "registration", "--locale", "en").json
    assert english["source"] == "default" and not english["subject"].startswith("Willkommen")


def test_files_not_stored_yet_are_previewed_and_autoescaped(userreg, new_app, files, tmp_path):
    app = new_app()
    html = files("b.html", "<p>{{ user.name }} {{ '<script>x</script>' }}</p>")
    preview = userreg(
        "template",
        "preview",
        app["appId"],
        "confirmation",
        "--html-file",
        html,
        "--subject-file",
        files("s.txt", "Hi {{ user.name }}"),
    )
    assert preview.code == 0, preview.err
    assert preview.json["source"] == "files" and preview.json["subject"] == "Hi Ann Example"
    assert preview.json["html"] == "<p>Ann Example &lt;script&gt;x&lt;/script&gt;</p>"
    # Nothing was stored.
    assert userreg("template", "show", app["appId"], "confirmation").json["source"] == "default"


def test_a_page_preview_writes_the_page(userreg, new_app, tmp_path):
    app = new_app()
    out = tmp_path / "page.html"
    preview = userreg("template", "preview", app["appId"], "password-reset", "--kind", "page", "--html-out", out)
    assert preview.code == 0, preview.err
    assert preview.json["kind"] == "page" and "subject" not in preview.json and "text" not in preview.json
    assert 'data-page="password-reset"' in out.read_text(encoding="utf-8")


def test_bad_previews_fail_with_a_clear_message(userreg, new_app, files, tmp_path):
    app_id = new_app()["appId"]
    cases = [
        (("nothing",), 2, "unknown template"),
        (("password-reset",), 2, "--kind"),
        (("confirmation", "--locale", "xx"), 2, "--locale"),
        (("confirmation", "--html-file", files("broken.html", "{% if %}")), 2, "does not compile"),
        (("confirmation", "--html-out", tmp_path / "missing" / "x.html"), 2, "--html-out"),
        (
            (
                "confirmation",
                "--text-file",
                files("loop.txt", "{% for i in range(99999) %}{% for j in range(99999) %}x{% endfor %}{% endfor %}"),
            ),
            1,
            "render limit",
        ),
    ]
    for argv, code, message in cases:
        outcome = userreg("template", "preview", app_id, *argv)
        assert (outcome.code, message in outcome.err, outcome.out) == (code, True, ""), (argv, outcome.err)
    assert userreg("template", "preview", "no such app", "confirmation").code == 1
