"""The README's "Fresh Debian/Ubuntu machine" blocks can be pasted: every command they run comes
with the system or from a package they install, the packages are the ones the project needs, the
settings they export match the PostgreSQL role and the RabbitMQ user they create, and the README
still opens with the two commands."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from userreg.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SECTION = README.split("\n## Fresh Debian/Ubuntu machine\n", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"^```sh\n(.*?)^```$", SECTION, re.M | re.S)
# What a Debian or Ubuntu installation has before anything is installed: apt, util-linux (runuser)
# and the shell's own commands.
PRESENT = {"apt-get", "runuser", "export", "set", ".", "cd"}
# Command → the Debian package that brings it.
PACKAGE_OF = {
    "make": "make",
    "git": "git",
    "psql": "postgresql",
    "createdb": "postgresql",
    "rabbitmqctl": "rabbitmq-server",
    "python3": "python3-venv",
}
# What the project needs: to run (make, python3-venv, postgresql, rabbitmq-server) and to test
# (nodejs and npm for the SDK and accessibility tests, chromium for the browser tests,
# docker-compose for `docker compose config`).
NEEDED = {"make", "python3-venv", "postgresql", "rabbitmq-server", "nodejs", "npm", "chromium", "docker-compose"}


def commands(block: str) -> list[list[str]]:
    """Each command line of a block as words (comments and empty lines dropped)."""
    lines = [line for line in block.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [shlex.split(line) for line in lines]


def command_name(words: list[str]) -> str:
    """The program a line runs: `runuser -u USER -- PROGRAM …` runs PROGRAM."""
    if words[0] == "runuser":
        return words[words.index("--") + 1]
    return words[0]


def installed_packages() -> list[str]:
    packages = []
    for block in BLOCKS:
        for words in commands(block):
            if words[:2] == ["apt-get", "install"]:
                packages += [word for word in words[2:] if not word.startswith("-")]
    return packages


def test_the_readme_opens_with_the_two_commands_then_the_pitch():
    first, second, _, title, _, pitch = README.splitlines()[:6]
    assert first.startswith("`make run` — ") and second.startswith("`make test` — ")
    assert title == "# userreg"
    assert pitch.startswith("**") and pitch.endswith("**")
    # The fresh-machine section comes right after the introduction, before anything else.
    assert re.findall(r"^## .*", README, re.M)[0] == "## Fresh Debian/Ubuntu machine"


def test_the_blocks_install_what_the_project_needs():
    assert len(BLOCKS) == 2
    assert set(installed_packages()) >= NEEDED
    assert commands(BLOCKS[0])[0] == ["apt-get", "update"]


def test_every_command_the_blocks_run_comes_with_the_system_or_an_installed_package():
    installed = set(installed_packages())
    for block in BLOCKS:
        for words in commands(block):
            name = command_name(words)
            assert name in PRESENT or PACKAGE_OF.get(name) in installed, f"{name}: where does it come from?"
    assert ["make", "run"] in commands(BLOCKS[1])
    assert re.search(r"^run: ", (ROOT / "Makefile").read_text(), re.M)


def test_the_exported_settings_log_in_as_the_role_and_user_the_first_block_creates():
    first = commands(BLOCKS[0])
    exported = dict(word.split("=", 1) for words in commands(BLOCKS[1]) if words[0] == "export" for word in words[1:])
    settings = Settings(**{name.lower(): value for name, value in exported.items()})

    database = make_url(settings.database_url.get_secret_value())
    (role,) = [
        re.fullmatch(r"CREATE ROLE (\w+) LOGIN CREATEDB PASSWORD '(\w[\w-]*)'", words[-1])
        for words in first
        if command_name(words) == "psql"
    ]
    assert role and (database.username, database.password) == (role[1], role[2])
    assert (database.host, database.port, database.drivername) == ("127.0.0.1", 5432, "postgresql+asyncpg")
    createdb = [words for words in first if command_name(words) == "createdb"]
    assert createdb == [["runuser", "-u", "postgres", "--", "createdb", "--owner", role[1], database.database]]

    broker = make_url(settings.amqp_url.get_secret_value().replace("amqp://", "amqp+x://", 1))
    (add_user,) = [words for words in first if words[:2] == ["rabbitmqctl", "add_user"]]
    assert (broker.username, broker.password) == tuple(add_user[2:]) and broker.host == "127.0.0.1"
    assert ["rabbitmqctl", "set_permissions", "-p", "/", broker.username, ".*", ".*", ".*"] in first


@pytest.mark.skipif(shutil.which("apt-cache") is None, reason="not a Debian-based machine: no apt-cache")
def test_debian_knows_every_package_the_blocks_install():
    policy = subprocess.run(
        ["apt-cache", "policy", *installed_packages()], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    candidates = dict(re.findall(r"^(\S+):\n(?:  .*\n)*?  Candidate: (\S+)", policy, re.M))
    if not candidates:
        pytest.skip("apt has no package lists here (`apt-get update` was never run)")
    for package in installed_packages():
        assert candidates.get(package, "(none)") != "(none)", f"Debian has no package {package}"
