"""Installs: `make run` installs only what the system needs to run, `make test` adds the test
libraries, and both (like the images) take every library from the lock files, which pin all that
the packages and the tests name, with hashes."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()
PACKAGES = re.search(r"^PACKAGES := (.+)$", MAKEFILE, re.M)[1].split()
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
TEST_LOCK = ROOT / "requirements" / "test.txt"
TEST_REQUIREMENTS = ROOT / "tests" / "requirements.txt"
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+?)(?: ;[^\\]*)? \\$", re.M)


def pins(lock: Path) -> dict[str, Version]:
    """Library → the version the lock file pins, each pin followed by its hashes."""
    text = lock.read_text()
    found = {canonicalize_name(match["name"]): Version(match["version"]) for match in PIN.finditer(text)}
    assert len(found) == len(re.findall(r"^[A-Za-z0-9]", text, re.M)), f"{lock.name}: a line that is not a pin"
    assert text.count("--hash=sha256:") >= len(found), f"{lock.name}: a pin without its hashes"
    return found


def requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def package_dependencies() -> list[Requirement]:
    """What the project's packages name, but each other."""
    named = []
    for package in PACKAGES:
        project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
        named += [r for r in requirements(project["dependencies"]) if not r.name.startswith("userreg-")]
    return named


def dry_run(target: str, tmp_path: Path) -> list[str]:
    """The pip commands `make TARGET` would run in a new virtual environment."""
    run = subprocess.run(
        ["make", "-n", target, f"VENV={tmp_path / 'venv'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in run.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_the_runtime_lock_and_no_test_library(tmp_path):
    commands = dry_run("run", tmp_path)
    assert any("--require-hashes -r requirements/runtime.txt" in command for command in commands), commands
    assert not any("test.txt" in command or "tests/requirements" in command for command in commands), commands
    # The project's packages come from this checkout, without dependencies: all of them come pinned.
    (packages,) = [command for command in commands if "--no-deps" in command]
    assert packages.split("--no-deps", 1)[1].split() == [word for p in PACKAGES for word in ("-e", p)]
    for command in commands:
        assert "--require-hashes" in command or "--no-deps" in command or command.endswith("--upgrade pip"), command


def test_the_runtime_lock_holds_no_test_library():
    runtime = pins(RUNTIME_LOCK)
    for requirement in requirements(TEST_REQUIREMENTS.read_text().splitlines()):
        assert canonicalize_name(requirement.name) not in runtime, requirement.name
    for name in ("pytest", "playwright", "schemathesis", "hypothesis", "testcontainers"):
        assert name not in runtime, name


def test_make_test_adds_the_test_lock(tmp_path):
    commands = dry_run("test", tmp_path)
    runtime = [i for i, command in enumerate(commands) if "-r requirements/runtime.txt" in command]
    test = [i for i, command in enumerate(commands) if "--require-hashes -r requirements/test.txt" in command]
    assert runtime and test and runtime[0] < test[0], commands


def test_the_runtime_lock_pins_every_library_the_packages_name():
    runtime = pins(RUNTIME_LOCK)
    for requirement in package_dependencies():
        name = canonicalize_name(requirement.name)
        assert name in runtime, f"{requirement.name} is not in {RUNTIME_LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(runtime[name], prereleases=True), (
            f"{RUNTIME_LOCK.name} pins {name} {runtime[name]}, outside {requirement}: run `make lock`"
        )


def test_the_test_lock_pins_every_test_library_and_agrees_with_the_runtime_lock():
    runtime, test = pins(RUNTIME_LOCK), pins(TEST_LOCK)
    for requirement in requirements(TEST_REQUIREMENTS.read_text().splitlines()):
        name = canonicalize_name(requirement.name)
        assert name in test, f"{requirement.name} is not in {TEST_LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(test[name], prereleases=True), f"{name} {test[name]}: run `make lock`"
    for name in runtime.keys() & test.keys():
        assert runtime[name] == test[name], f"{name}: {runtime[name]} to run, {test[name]} to test"


def test_the_lock_inputs_name_every_package_and_the_test_requirements():
    runtime_in = (ROOT / "requirements" / "runtime.in").read_text()
    assert re.findall(r"^-e (\S+)$", runtime_in, re.M) == PACKAGES
    test_in = (ROOT / "requirements" / "test.in").read_text()
    assert re.findall(r"^-[rc] (\S+)$", test_in, re.M) == ["runtime.txt", "../tests/requirements.txt"]
    assert re.search(r"^lock:\n(\t.*\n)*\t.*uv pip compile .*--generate-hashes", MAKEFILE, re.M)


@pytest.mark.parametrize("dockerfile", sorted(ROOT.glob("services/*/Dockerfile")), ids=lambda p: p.parent.name)
def test_each_image_installs_the_runtime_lock_then_the_packages_without_dependencies(dockerfile):
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    installs = [line for line in text.splitlines() if line.startswith("RUN") and "pip install" in line]
    assert installs[0].endswith("pip install --require-hashes -r /src/requirements/runtime.txt")
    for install in installs[1:]:
        assert "--no-deps" in install, install
    assert "COPY requirements/runtime.txt /src/requirements/runtime.txt" in text
    assert "COPY VERSION /src/VERSION" in text  # the packages read their version from it
