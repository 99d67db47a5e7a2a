"""`userreg --version`, `userreg settings` and `userreg completion bash|zsh`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from userreg.admin.cli import build_parser
from userreg.admin.commands.completion import command_tree

USERREG = Path(sys.executable).parent / "userreg"


def test_version_prints_the_installed_version_of_the_product():
    done = subprocess.run([str(USERREG), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"userreg {version('userreg-admin')}\n"


def test_settings_prints_every_setting_by_its_variable_with_secrets_masked(userreg, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://ops:db-s3cret@db.example:5432/userreg")
    monkeypatch.setenv("AMQP_URL", "amqp://ops:mq-s3cret@mq.example:5672/")
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-s3cret")
    monkeypatch.setenv("SMTP_USERNAME", "mailer")
    monkeypatch.setenv("RESEND_COOLDOWN_SECONDS", "90")
    shown = userreg("settings")
    assert shown.code == 0, shown.err
    assert "s3cret" not in shown.out + shown.err
    settings = shown.json
    assert settings["DATABASE_URL"] == "postgresql+asyncpg://ops:***@db.example:5432/userreg"
    assert settings["AMQP_URL"] == "amqp://ops:***@mq.example:5672/"
    assert settings["SMTP_PASSWORD"] == "***" and settings["SMTP_USERNAME"] == "mailer"
    assert settings["RESEND_COOLDOWN_SECONDS"] == 90  # from the environment
    assert settings["MAX_BODY_BYTES"] == 1048576  # a default
    assert settings["EVENTS_EXCHANGE"] and settings["LOG_LEVEL"]


def test_settings_without_a_password_show_none_and_bad_ones_exit_2(userreg, monkeypatch):
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    assert userreg("settings").json["SMTP_PASSWORD"] is None
    monkeypatch.setenv("MAX_BODY_BYTES", "lots")
    bad = userreg("settings")
    assert bad.code == 2 and "MAX_BODY_BYTES" in bad.err and bad.out == ""


def complete(script: str, *words: str) -> list[str]:
    """What bash offers after `userreg WORDS…` (the last word is the one being completed)."""
    line = ["userreg", *words]
    program = (
        f"{script}\nCOMP_WORDS=({' '.join(repr(word) for word in line)}); COMP_CWORD={len(line) - 1}\n"
        '_userreg; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    return sorted(filter(None, done.stdout.splitlines()))


@pytest.fixture(scope="module")
def bash_script() -> str:
    done = subprocess.run(
        [str(USERREG), "completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": "not a url"},
    )  # needs no settings
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_bash_completion_follows_the_command_tree(bash_script):
    assert "migrate" in complete(bash_script, "")
    assert complete(bash_script, "us") == ["user"]
    assert complete(bash_script, "user", "") == [
        "create",
        "delete",
        "end-sessions",
        "export",
        "list",
        "sessions",
        "set-status",
        "show",
    ]
    assert complete(bash_script, "user", "list", "--") == ["--after", "--help", "--limit", "--offset", "--status"]
    assert complete(bash_script, "user", "list", "My App", "--status", "E") == ["EMAIL_CONFIRMATION_PENDING", "ENABLED"]
    assert complete(bash_script, "schema", "set", "app", "age", "--type", "T") == ["TEXT"]
    assert complete(bash_script, "completion", "") == ["bash", "zsh"]
    assert complete(bash_script, "--v") == ["--version"]
    assert complete(bash_script, "template", "preview", "app", "confirmation", "--html-out", "tm") == ["tmp"]


def test_every_command_and_option_is_in_both_scripts(userreg):
    tree = command_tree(build_parser())
    scripts = {shell: userreg("completion", shell) for shell in ("bash", "zsh")}
    assert all(outcome.code == 0 for outcome in scripts.values())
    assert scripts["zsh"].out.startswith("#compdef userreg\n") and "compdef _userreg userreg" in scripts["zsh"].out
    assert "complete -F _userreg userreg" in scripts["bash"].out
    for path, command in tree.items():
        for script in scripts.values():
            assert f"'{path}'" in script.out
            assert all(option in script.out for option in command.options)
    assert userreg("completion", "fish").code == 2


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_follows_the_command_tree(userreg, tmp_path):
    script = tmp_path / "_userreg"
    script.write_text(userreg("completion", "zsh").out, encoding="utf-8")

    def offered(*words: str) -> list[str]:
        line = " ".join(f"'{word}'" for word in ("userreg", *words))
        program = (
            "autoload -U compinit; compinit -u -D; "
            f'source {script}; compadd() {{ shift; print -l -- "$@"; }}; _files() {{ print FILES; }}; '
            f"words=({line}); CURRENT={len(words) + 1}; _userreg"
        )
        done = subprocess.run(["zsh", "-f", "-c", program], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 0 and not done.stderr, done.stderr
        return sorted(filter(None, done.stdout.splitlines()))

    assert offered("user", "") == [
        "create",
        "delete",
        "end-sessions",
        "export",
        "list",
        "sessions",
        "set-status",
        "show",
    ]
    assert offered("user", "list", "app", "--status", "") == [
        "DISABLED",
        "EMAIL_CONFIRMATION_PENDING",
        "ENABLED",
        "GUEST",
    ]
    # compadd (here a stub that prints) gets every candidate; zsh itself keeps those matching the word.
    assert offered("schema", "set", "--") == ["--help", "--max-length", "--optional", "--required", "--type", "-h"]
    assert offered("template", "preview", "app", "confirmation", "--html-out", "") == ["FILES"]
