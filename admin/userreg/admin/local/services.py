"""The processes of a userreg system, as data: `userreg run` starts them on this machine, and
docker-compose.yml runs the same commands with the same ports and settings in containers (a test
holds the two to agreement)."""

from __future__ import annotations

from dataclasses import dataclass

# What every service that touches the database or the broker must be told where it runs.
BACKEND = ("DATABASE_URL", "AMQP_URL", "EVENTS_EXCHANGE", "BIND_HOST", "LOG_LEVEL")


@dataclass(frozen=True)
class Service:
    name: str
    command: str
    """The console script that runs it (and the container's command)."""
    port_setting: str
    """The `Settings` field of the HTTP port whose `health_path` answers 200 once it is ready."""
    environment: tuple[str, ...]
    """The settings (environment variable names) it must be given wherever it runs."""
    compose_service: str
    """Its counterpart in docker-compose.yml."""
    dockerfile: str | None
    """Its Dockerfile, relative to the repository root; None when compose uses a stock image."""
    health_path: str = "/health"
    extra_port_settings: tuple[str, ...] = ()
    """Other ports it listens on (`Settings` fields)."""

    @property
    def port_settings(self) -> tuple[str, ...]:
        return (self.port_setting, *self.extra_port_settings)


INBOX = Service(
    name="inbox",
    command="userreg-inbox",
    port_setting="inbox_http_port",
    extra_port_settings=("inbox_smtp_port",),
    environment=("BIND_HOST", "LOG_LEVEL", "INBOX_SMTP_PORT", "INBOX_HTTP_PORT"),
    # In containers, Mailpit plays the local inbox's part: SMTP on 1025, web on 8025.
    compose_service="mailpit",
    dockerfile=None,
)

REGISTRATION = Service(
    name="registration",
    command="userreg-registration",
    port_setting="registration_port",
    environment=(*BACKEND, "REGISTRATION_PORT", "PUBLIC_CONFIRMATION_URL"),
    compose_service="registration",
    dockerfile="services/registration/Dockerfile",
)

MAILER = Service(
    name="mailer",
    command="userreg-mailer",
    port_setting="mailer_port",
    environment=(*BACKEND, "MAILER_PORT", "SMTP_HOST", "SMTP_PORT", "SMTP_TLS", "SMTP_STARTTLS", "MAIL_FROM"),
    compose_service="mailer",
    dockerfile="services/mailer/Dockerfile",
)

CONFIRMATION_WEB = Service(
    name="confirmation-web",
    command="userreg-confirmation-web",
    port_setting="confirmation_port",
    environment=(*BACKEND, "CONFIRMATION_PORT", "PUBLIC_CONFIRMATION_URL"),
    compose_service="confirmation-web",
    dockerfile="services/confirmation-web/Dockerfile",
)

# The operators' web console (services/console/README.md): it changes what the other services read, asks them for their
# health (their ports), creates users as registration does (confirmation links) and sends test
# emails through the mailer's SMTP server.
CONSOLE = Service(
    name="console",
    command="userreg-console",
    port_setting="console_port",
    environment=(
        *BACKEND,
        "CONSOLE_PORT",
        "REGISTRATION_PORT",
        "CONFIRMATION_PORT",
        "MAILER_PORT",
        "PUBLIC_CONFIRMATION_URL",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_TLS",
        "SMTP_STARTTLS",
        "MAIL_FROM",
    ),
    compose_service="console",
    dockerfile="services/console/Dockerfile",
)

# In start order: the inbox first, so the mailer finds its SMTP server from the start.
SERVICES: tuple[Service, ...] = (INBOX, REGISTRATION, MAILER, CONFIRMATION_WEB, CONSOLE)
