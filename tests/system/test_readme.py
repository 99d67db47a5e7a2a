"""The README stays true to the code: its first lines, every setting, command and error code."""

from __future__ import annotations

import re
from pathlib import Path

from userreg.admin.cli import build_parser
from userreg.registration.errors import ERRORS
from userreg.shared.apps import SETTINGS
from userreg.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
API = (ROOT / "docs" / "api.md").read_text()


def test_the_first_lines_are_the_two_commands_and_ci_runs_the_second():
    first, second = README.splitlines()[:2]
    assert first.startswith("`make run`") and second.startswith("`make test`")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "make test"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: install\n\t\$\(BIN\)/userreg run$", makefile, re.M)
    assert re.search(r"^test: .*\n\t\$\(BIN\)/pytest ", makefile, re.M)


def test_every_setting_is_in_the_settings_table():
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)` \|", README, re.M))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_every_admin_command_is_shown():
    parser = build_parser()
    groups = parser._subparsers._group_actions[0].choices
    for name, group in groups.items():
        subcommands = group._subparsers._group_actions[0].choices if group._subparsers else {None: None}
        for sub in subcommands:
            shown = f"userreg {name} {sub}" if sub else f"userreg {name}"
            assert shown in README, shown


def test_every_app_setting_and_error_code_is_documented():
    for name in SETTINGS:
        assert name in README and f"`{name}`" in API, name
    for error in ERRORS:
        assert re.search(rf"^\| {error.code} \|", README, re.M), error.code
