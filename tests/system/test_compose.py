"""docker-compose.yml, the Dockerfiles and the local runner (`userreg run`) describe one system:
the same services, commands, ports and settings. No Docker engine is needed: the files are parsed,
and compose's variable substitution is done here the way compose does it, with the values of
.env.example (its empty passwords filled in, as an operator's `.env` has them)."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from userreg.admin.local.environment import child_environment, local_settings
from userreg.admin.local.services import CONSOLE, INBOX, SERVICES, Service
from userreg.shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()
# `$$` (a literal $), `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`,
# `${NAME?error}`, `${NAME:+alternative}`, `${NAME+alternative}` and `$NAME`, as compose reads them.
VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_]\w*)(?:(?P<operator>:?[-?+])(?P<argument>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_]\w*))"
)


def dotenv(path: Path) -> dict[str, str]:
    """NAME=VALUE lines; blank lines and # comments skipped."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def interpolate(value: object, environment: dict[str, str]) -> object:
    """Compose's substitution in every string of the parsed file; an unset required variable fails."""
    if isinstance(value, dict):
        return {key: interpolate(item, environment) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, environment) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        operator, argument = match["operator"] or "", match["argument"] or ""
        present = name in environment and (environment[name] != "" or not operator.startswith(":"))
        if operator.endswith("-"):
            return environment[name] if present else argument
        if operator.endswith("?"):
            if not present:
                raise AssertionError(f"compose would refuse to start: {name}: {argument}")
            return environment[name]
        if operator.endswith("+"):
            return argument if present else ""
        return environment.get(name, "")

    return VARIABLE.sub(substitute, value)


def compose_variables(text: str) -> set[str]:
    """The names of the variables the text substitutes ($$ is an escaped $, not a variable)."""
    return {match["name"] or match["bare"] for match in VARIABLE.finditer(text) if not match["escaped"]}


ENV_EXAMPLE = dotenv(ROOT / ".env.example")
# What an operator's .env holds: the example, with a password of their own wherever it has none.
OPERATOR_ENV = {name: value or f"{name.lower().replace('_', '')}0123" for name, value in ENV_EXAMPLE.items()}
RAW_COMPOSE = yaml.safe_load(COMPOSE_TEXT)
COMPOSE = interpolate(RAW_COMPOSE, OPERATOR_ENV)
CONTAINERISED = [service for service in SERVICES if service.dockerfile is not None]
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
DEFAULTS = Settings.model_construct()  # the declared defaults, whatever this machine's environment says


def compose_service(service: Service) -> dict:
    return COMPOSE["services"][service.compose_service]


def dockerfile(service: Service) -> dict[str, list[str]]:
    """Instruction → arguments of each occurrence, with line continuations joined."""
    text = (ROOT / service.dockerfile).read_text()
    text = re.sub(r"\\\n", " ", text)
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.setdefault(keyword.upper(), []).append(rest.strip())
    return instructions


def container_ports(definition: dict) -> set[int]:
    """The container side of `ports` ("8080-8089:8080", "15672") and of `expose`."""
    ports = {int(str(entry).rsplit(":", 1)[-1]) for entry in definition.get("ports", [])}
    return ports | {int(entry) for entry in definition.get("expose", [])}


def test_compose_runs_every_service_of_the_local_runner_and_the_infrastructure():
    expected = {service.compose_service for service in SERVICES} | {"postgres", "rabbitmq", "migrate"}
    assert set(COMPOSE["services"]) == expected
    assert COMPOSE["services"]["mailpit"]["image"].startswith("axllent/mailpit:")


@pytest.mark.parametrize("service", CONTAINERISED, ids=lambda s: s.name)
def test_each_service_is_built_from_its_dockerfile_and_runs_the_runners_command(service):
    definition = compose_service(service)
    assert definition["build"] == {"context": ".", "dockerfile": service.dockerfile}
    assert definition["command"] == [service.command]
    instructions = dockerfile(service)
    assert instructions["CMD"] == [f'["{service.command}"]']
    assert instructions["FROM"][-1] == "python:3.11-slim"
    assert instructions["USER"] and instructions["USER"][-1] not in ("root", "0")
    # The command is a console script of the package the Dockerfile installs.
    package = ROOT / Path(service.dockerfile).parent
    scripts = tomllib.loads((package / "pyproject.toml").read_text())["project"]["scripts"]
    assert service.command in scripts
    assert any(f"/src/{package.relative_to(ROOT)}" in run for run in instructions["RUN"])


@pytest.mark.parametrize("service", CONTAINERISED, ids=lambda s: s.name)
def test_ports_and_health_checks_agree(service):
    port = getattr(DEFAULTS, service.port_setting)
    definition = compose_service(service)
    instructions = dockerfile(service)
    assert instructions["EXPOSE"] == [str(port)]
    assert f"http://127.0.0.1:{port}{service.health_path}" in instructions["HEALTHCHECK"][0]
    assert container_ports(definition) == {port}
    assert definition["environment"][service.port_setting.upper()] == str(port)


@pytest.mark.parametrize("service", CONTAINERISED, ids=lambda s: s.name)
def test_compose_gives_each_service_the_settings_the_runner_gives_it(service):
    environment = compose_service(service)["environment"]
    assert set(service.environment) <= set(environment)
    assert set(environment) <= SETTING_NAMES, "compose sets an environment variable no setting reads"
    # The settings the values make are valid for the services.
    Settings(**{name.lower(): value for name, value in environment.items()})

    settings, _ = local_settings(DEFAULTS, {})
    assert set(service.environment) <= set(child_environment(service, settings, {}))


def test_the_inbox_and_mailpit_use_the_same_ports_and_the_mailer_sends_to_the_catcher():
    mailpit = COMPOSE["services"]["mailpit"]
    assert INBOX.compose_service == "mailpit"
    # Mailpit listens on 1025 (SMTP) and 8025 (web), the local inbox's default ports.
    assert DEFAULTS.inbox_smtp_port == 1025 and DEFAULTS.inbox_http_port == 8025
    assert container_ports(mailpit) == {DEFAULTS.inbox_http_port}
    # The mailer sends its emails there, the console its test emails, from the same sender.
    for sender in ("mailer", "console"):
        environment = COMPOSE["services"][sender]["environment"]
        assert environment["SMTP_HOST"] == "mailpit" and environment["SMTP_PORT"] == str(DEFAULTS.inbox_smtp_port)
        assert environment["MAIL_FROM"] == COMPOSE["services"]["mailer"]["environment"]["MAIL_FROM"]
        assert COMPOSE["services"][sender]["depends_on"]["mailpit"] == {"condition": "service_healthy"}
    assert str(DEFAULTS.inbox_http_port) in " ".join(mailpit["healthcheck"]["test"])


def test_dependencies_wait_for_health_and_for_the_migration():
    services = COMPOSE["services"]
    for name in ("postgres", "rabbitmq", "mailpit"):
        assert services[name]["healthcheck"]["test"], name
    migrate = services["migrate"]
    assert migrate["command"] == ["userreg", "migrate"]
    # The registration image is built once and the migration runs in it.
    assert "build" not in migrate and migrate["image"] == services["registration"]["image"]
    assert migrate["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    assert set(migrate["environment"]) >= {"DATABASE_URL", "AMQP_URL", "EVENTS_EXCHANGE"}
    for service in CONTAINERISED:
        depends_on = compose_service(service)["depends_on"]
        assert depends_on["postgres"] == {"condition": "service_healthy"}
        assert depends_on["rabbitmq"] == {"condition": "service_healthy"}
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
    assert services["mailer"]["depends_on"]["mailpit"] == {"condition": "service_healthy"}


def test_every_service_can_be_scaled():
    for name, definition in COMPOSE["services"].items():
        assert "container_name" not in definition, name
    # The console excepted: one replica is all operators need, on a loopback port of its own
    # (see the next test).
    for service in (service for service in CONTAINERISED if service is not CONSOLE):
        for entry in compose_service(service).get("ports", []):
            host = str(entry).rsplit(":", 1)[0] if ":" in str(entry) else ""
            # Either no host port (Docker picks one) or a range, one port per replica.
            assert host == "" or re.fullmatch(r"\d+-\d+", host), f"{service.name}: fixed host port {entry}"


def test_the_backend_settings_point_at_the_compose_servers():
    registration = COMPOSE["services"]["registration"]["environment"]
    assert registration["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in registration["DATABASE_URL"]
    assert "@rabbitmq:5672/" in registration["AMQP_URL"]
    assert registration["BIND_HOST"] == "0.0.0.0"
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert registration["DATABASE_URL"].endswith(f"/{postgres['POSTGRES_DB']}")
    # Links in the emails open the published confirmation-web port.
    published = COMPOSE["services"]["confirmation-web"]["ports"][0].split(":")[0].split("-")[0]
    assert registration["PUBLIC_CONFIRMATION_URL"] == f"http://localhost:{published}"
    assert (
        COMPOSE["services"]["confirmation-web"]["environment"]["PUBLIC_CONFIRMATION_URL"]
        == registration["PUBLIC_CONFIRMATION_URL"]
    )


def test_the_docker_build_context_keeps_what_the_images_copy():
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = set()
    for service in CONTAINERISED:
        for copy in dockerfile(service).get("COPY", []):
            source = shlex.split(copy)[0]
            if not source.startswith("--"):
                copied.add(source)
    assert copied >= {
        "shared",
        "admin",
        "services/registration",
        "services/mailer",
        "services/confirmation-web",
        "services/console",
    }
    for source in copied:
        assert not any(source == pattern or source.startswith(pattern + "/") for pattern in ignored), source


def test_the_management_ui_mailpit_and_the_console_are_published_on_this_machine_only():
    # The mailer's queues and Mailpit's inbox hold live confirmation links; the console changes
    # everything (operators reach it through a tunnel or a proxy).
    for name in ("rabbitmq", "mailpit", "console"):
        ports = COMPOSE["services"][name]["ports"]
        assert ports, name
        for entry in ports:
            assert str(entry).startswith("127.0.0.1:"), f"{name}: {entry} is published on every interface"
    assert container_ports(COMPOSE["services"]["rabbitmq"]) == {15672}  # AMQP itself is not published
    assert "ports" not in COMPOSE["services"]["postgres"]
    assert COMPOSE["services"]["console"]["ports"] == [f"127.0.0.1:{DEFAULTS.console_port}:{DEFAULTS.console_port}"]


CREDENTIALS = {
    "postgres": ("POSTGRES_USER", "POSTGRES_PASSWORD"),
    "rabbitmq": ("RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"),
}


def strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [text for item in value.values() for text in strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in strings(item)]
    return [value] if isinstance(value, str) else []


def test_no_credential_is_written_in_the_compose_file():
    references: dict[str, set[str]] = {}  # variable → the operators it is used with ("" for none)
    for match in VARIABLE.finditer(COMPOSE_TEXT):
        if not match["escaped"]:
            references.setdefault(match["name"] or match["bare"], set()).add(match["operator"] or "")
    # Each variable stands for itself: the credentials are where it appears as <NAME>.
    marked = interpolate(RAW_COMPOSE, {name: f"<{name}>" for name in references})
    credentials = set()
    for service, names in CREDENTIALS.items():
        for name in names:
            value = marked["services"][service]["environment"][name]
            assert re.fullmatch(r"<\w+>", value), f"{service}: {name} is written in the file, not from .env"
            credentials.add(value.strip("<>"))
    # Every URL's user and password (DATABASE_URL, AMQP_URL, …) are variables too.
    userinfos = [match[1] for text in strings(marked) for match in re.finditer(r"://([^/@]*)@", text)]
    assert len(userinfos) >= 2
    for userinfo in userinfos:
        assert re.fullmatch(r"<\w+>:<\w+>", userinfo), f"a URL in the file has credentials: {userinfo}"
        credentials.update(part.strip("<>") for part in userinfo.split(":"))
    # …that compose requires to be set (${NAME:?…}) rather than falling back to a default of the file.
    for name in credentials:
        assert references[name] == {":?"}, f"{name} must be ${{{name}:?…}} wherever it is used"
    # And no service sets a secret-looking variable to a literal.
    for service, definition in marked["services"].items():
        for name, value in definition.get("environment", {}).items():
            if re.search(r"PASS|SECRET|TOKEN", name):
                assert re.fullmatch(r"<\w+>", str(value)), f"{service}: {name} is written in the file"


def test_every_variable_compose_uses_is_in_env_example_which_ships_no_password():
    assert compose_variables(COMPOSE_TEXT) == set(ENV_EXAMPLE)
    for name, value in ENV_EXAMPLE.items():
        if "PASSWORD" in name:
            assert value == "", f".env.example must not ship a password: {name}"
    # With the example as it is, compose refuses to start rather than run without passwords.
    with pytest.raises(AssertionError, match="PASSWORD"):
        interpolate(RAW_COMPOSE, ENV_EXAMPLE)
    # The compose URLs carry the operator's credentials.
    backend = COMPOSE["services"]["registration"]["environment"]
    assert backend["DATABASE_URL"] == (
        f"postgresql+asyncpg://{OPERATOR_ENV['POSTGRES_USER']}:"
        f"{OPERATOR_ENV['POSTGRES_PASSWORD']}@postgres:5432/"
        f"{OPERATOR_ENV['POSTGRES_DB']}"
    )
    assert backend["AMQP_URL"] == (
        f"amqp://{OPERATOR_ENV['RABBITMQ_USER']}:{OPERATOR_ENV['RABBITMQ_PASSWORD']}@rabbitmq:5672/"
    )


def test_the_env_file_is_never_committed():
    ignored = {line.strip() for line in (ROOT / ".gitignore").read_text().splitlines()}
    assert ".env" in ignored
