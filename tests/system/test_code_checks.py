"""The code checks `make test` runs, as configured in the root pyproject.toml: ruff's lint and its
format check over the whole tree (packages, tests, benchmarks), and mypy over the code that runs
(the packages and the benchmarks). Each part of the tree is its own case and fails with the
tools' own findings for it; a finding outside every part fails the case "elsewhere"."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Every part of the tree, by its folder.
PARTS = {
    "shared": "shared/",
    "registration": "services/registration/",
    "mailer": "services/mailer/",
    "confirmation-web": "services/confirmation-web/",
    "console": "services/console/",
    "inbox": "tools/inbox/",
    "admin": "admin/",
    "benchmarks": "benchmarks/",
    "tests": "tests/",
}
ELSEWHERE = "elsewhere"
# Where each tool names the file of a finding: `path:line:col: …` (ruff's concise output, of the
# lint and of the format check), `path:line: error|note: …` (mypy).
RUFF_FINDING = re.compile(r"^(?P<path>[^:\s]+):\d+:\d+: ")
TYPE_FINDING = re.compile(r"^(?P<path>[^:\s]+):\d+: (?:error|note): ")
# The last words of a run that checked everything (with or without findings): without them the tool
# did not run (not installed, crashed, misconfigured), which fails the test rather than passing it.
LINT_RAN = re.compile(r"^(?:All checks passed!|Found \d+ errors?\.)$", re.M)
FORMAT_RAN = re.compile(r"^\d+ files? (?:would be reformatted|already formatted)", re.M)
TYPES_RAN = re.compile(r"^(?:Success: no issues found|Found \d+ errors? in \d+ files?)", re.M)
# Under the suite's 300 s per test: the first case of a check pays for its whole run.
TIMEOUT_SECONDS = 240

pytestmark = pytest.mark.xdist_group("code_checks")


def _run(ran: re.Pattern[str], *command: str) -> list[str]:
    """The output lines of `python -m <command>` run at the root; a tool that did not get to the end
    of its check (`ran` is its summary line) fails the test."""
    done = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS
    )
    if not ran.search(done.stdout):
        pytest.fail(f"{' '.join(command)} did not run (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout.splitlines()


def _by_part(lines: list[str], finding: re.Pattern[str]) -> dict[str, list[str]]:
    """The finding lines of a tool's output, by the part their file is in."""
    parts: dict[str, list[str]] = {}
    for line in lines:
        found = finding.match(line)
        if found is None:
            continue
        path = found["path"]
        part = next((name for name, folder in PARTS.items() if path.startswith(folder)), ELSEWHERE)
        parts.setdefault(part, []).append(line)
    return parts


@cache
def _lint() -> dict[str, list[str]]:
    return _by_part(_run(LINT_RAN, "ruff", "check", "--no-fix", "--output-format", "concise", "."), RUFF_FINDING)


@cache
def _format() -> dict[str, list[str]]:
    return _by_part(_run(FORMAT_RAN, "ruff", "format", "--check", "--output-format", "concise", "."), RUFF_FINDING)


@cache
def _types() -> dict[str, list[str]]:
    return _by_part(_run(TYPES_RAN, "mypy"), TYPE_FINDING)


CHECKS: dict[str, tuple[Callable[[], dict[str, list[str]]], str]] = {
    "ruff check": (_lint, "`ruff check --fix <paths>` fixes some; the others by hand"),
    "ruff format": (_format, "`ruff format <paths>` rewrites them"),
    "mypy": (_types, "fix the types; an ignore names its error code and why"),
}
# mypy checks the code that runs, not the tests.
CASES = [(part, check) for part in [*PARTS, ELSEWHERE] for check in CHECKS if (part, check) != ("tests", "mypy")]


@pytest.mark.parametrize(("part", "check"), [pytest.param(*case, id="-".join(case)) for case in CASES])
def test_the_code_passes_the_check(part: str, check: str) -> None:
    run, how_to_fix = CHECKS[check]
    findings = run().get(part, [])
    assert not findings, f"{check}: {len(findings)} finding(s) in {part} ({how_to_fix}):\n" + "\n".join(findings)
