"""docker-compose.yml as compose itself reads it: `docker compose config` (or Debian's
`docker-compose config`, which `make compose` installs) validates the file with an operator's `.env`
and refuses it while a password is missing. Neither needs a running Docker engine. Besides: every
image is pinned, one image serves the migration and registration, every long-running service has a
stop grace period."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.system.test_compose import COMPOSE, ENV_EXAMPLE, OPERATOR_ENV, ROOT

COMPOSE_SECONDS = 60
# A tag that names a release: a version (16.6-alpine, 4.1-management, v1.22.3), never `latest`.
PINNED_TAG = re.compile(r"v?\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?")


def compose_command() -> list[str] | None:
    """The compose command this machine has: the Docker CLI plugin, else the standalone binary."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=COMPOSE_SECONDS)
        if probe.returncode == 0:
            return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


@pytest.fixture(scope="module")
def compose() -> list[str]:
    command = compose_command()
    if command is None:
        pytest.skip("no compose binary: neither `docker compose` nor `docker-compose` is installed (`make compose`)")
    return command


def compose_config(compose: list[str], env_file: Path) -> subprocess.CompletedProcess[str]:
    """`config -q` of the repository's file with this env file (the process environment, which
    would override it, holds none of the file's variables)."""
    environment = {name: value for name, value in os.environ.items() if name not in ENV_EXAMPLE}
    return subprocess.run(
        [*compose, "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COMPOSE_SECONDS,
    )


def env_file(directory: Path, values: dict[str, str]) -> Path:
    path = directory / "compose.env"
    path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    return path


def test_compose_validates_the_file_with_an_operators_env(compose, tmp_path):
    checked = compose_config(compose, env_file(tmp_path, OPERATOR_ENV))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_refuses_the_file_while_a_password_is_missing(compose, tmp_path):
    checked = compose_config(compose, env_file(tmp_path, ENV_EXAMPLE))
    assert checked.returncode != 0
    assert "PASSWORD" in checked.stderr, checked.stderr


def test_every_image_is_pinned_to_a_release():
    built_here = {definition.get("image") for definition in COMPOSE["services"].values() if "build" in definition}
    for name, definition in COMPOSE["services"].items():
        if "build" in definition or definition["image"] in built_here:
            continue  # built from this checkout
        repository, _, tag = definition["image"].rpartition(":")
        assert repository and PINNED_TAG.fullmatch(tag), f"{name}: {definition['image']} is not pinned to a release"


def test_rabbitmq_is_a_supported_release_with_the_management_ui():
    image = COMPOSE["services"]["rabbitmq"]["image"]
    assert re.fullmatch(r"rabbitmq:4\.\d+(\.\d+)?-management", image), image


def test_the_migration_runs_in_the_registration_image_built_once():
    services = COMPOSE["services"]
    built = {name for name, definition in services.items() if "build" in definition}
    images = [services[name]["image"] for name in built if "image" in services[name]]
    assert len(images) == len(set(images)), "two services build the same image"
    assert "migrate" not in built and services["migrate"]["image"] == services["registration"]["image"]
    # A local name that is never looked up in a registry: no one else's image can stand in for it.
    assert "/" not in services["registration"]["image"] and services["migrate"]["pull_policy"] == "never"


def test_every_long_running_service_has_a_stop_grace_period():
    for name, definition in COMPOSE["services"].items():
        if definition.get("restart", "no") != "no":
            assert "stop_grace_period" in definition, f"{name}: compose would kill it after 10 s"


def test_make_test_installs_the_compose_binary_the_check_needs():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test: .*\bcompose\b", makefile, re.M)
    assert re.search(r"^compose:\n(\t.*\n)*\t.*apt-get install .*docker-compose", makefile, re.M)
