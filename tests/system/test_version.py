"""One version for the whole product: the repository's VERSION file, which every package reads,
which the installed packages carry, which every service's `/health` reports and which the changelog
has an entry for."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from userreg.shared.runtime import ops

ROOT = Path(__file__).resolve().parents[2]
VERSION = (ROOT / "VERSION").read_text().strip()
PYPROJECTS = sorted(path for path in ROOT.glob("*/**/pyproject.toml") if "node_modules" not in path.parts)


def test_the_version_file_holds_one_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION), VERSION


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda path: str(path.parent.relative_to(ROOT)))
def test_every_package_takes_its_version_from_the_version_file(pyproject):
    config = tomllib.loads(pyproject.read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    source = config["tool"]["hatch"]["version"]
    assert (pyproject.parent / source["path"]).resolve() == ROOT / "VERSION"
    match = re.search(source["pattern"], (ROOT / "VERSION").read_text(), re.M)
    assert match and match["version"] == VERSION


def test_the_installed_packages_carry_that_version():
    names = [tomllib.loads(path.read_text())["project"]["name"] for path in PYPROJECTS]
    installed = {name: metadata.version(name) for name in names}
    assert installed == dict.fromkeys(names, VERSION), "installed before VERSION changed: run `make install`"


async def test_health_reports_the_version():
    response = await ops.health(None)
    assert json.loads(response.body) == {"status": "ok", "version": VERSION}


def test_the_changelog_has_an_entry_for_the_version_and_there_is_a_licence():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(VERSION)} - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)
    assert re.search(r"^## Unreleased$", changelog, re.M)
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
