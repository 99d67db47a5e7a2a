"""The figures of the fault-injection tests (registered, emailed, lost, duplicated, recovery time),
shown at the end of every pytest run that had any, and written to test-artifacts/fault-report.txt.

A fault test calls `report(record_property, name, **figures)`: the line is printed and attached to
the test's report, which reaches the controlling process even under xdist; there this plugin
(registered by the root conftest) prints every line in the terminal summary and writes the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPORT_FILE = Path(__file__).resolve().parents[2] / "test-artifacts" / "fault-report.txt"
PROPERTY = "fault figures"


def format_figures(name: str, figures: dict[str, Any]) -> str:
    def shown(value: Any) -> str:
        return f"{value:.1f}s" if isinstance(value, float) else str(value)

    return f"{name}: " + ", ".join(f"{key}={shown(value)}" for key, value in figures.items())


def report(record_property, name: str, **figures: Any) -> str:
    """Record one fault run's figures; returns the line (handy in an assertion's message)."""
    line = format_figures(name, figures)
    print(line)
    record_property(PROPERTY, line)
    return line


def _lines(terminalreporter) -> list[str]:
    lines = []
    for outcome in ("passed", "failed"):
        for test_report in terminalreporter.stats.get(outcome, []):
            if getattr(test_report, "when", None) != "call":
                continue
            for key, value in getattr(test_report, "user_properties", ()):
                if key == PROPERTY:
                    lines.append(f"{value}{'' if outcome == 'passed' else '  [FAILED]'}")
    return lines


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller reports
        return
    lines = _lines(terminalreporter)
    if not lines:
        return
    terminalreporter.write_sep("=", "fault injection figures")
    for line in lines:
        terminalreporter.write_line(line)
    REPORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    REPORT_FILE.write_text("\n".join(lines) + "\n")
    terminalreporter.write_line(f"(written to {REPORT_FILE.relative_to(REPORT_FILE.parents[1])})")
