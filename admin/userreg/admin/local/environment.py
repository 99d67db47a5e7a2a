"""The settings the local runner's children run with: resolved once by the runner, then spelled out
in each child's environment (`child_environment`), so every child runs with exactly those."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

from userreg.admin.local.services import Service
from userreg.shared.settings import Settings


def reachable_host(bind_host: str) -> str:
    """Where a client on this machine reaches a server bound to `bind_host`."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0", "::") else bind_host


def base_url(settings: Settings, port_setting: str) -> str:
    return f"http://{reachable_host(settings.bind_host)}:{getattr(settings, port_setting)}"


def local_settings(settings: Settings, environ: Mapping[str, str]) -> tuple[Settings, bool]:
    """The settings the children run with, and whether the local inbox runs: only when no SMTP
    server is configured, and then the mailer (and the console's test emails) send to it.
    Confirmation links point at the local confirmation-web unless PUBLIC_CONFIRMATION_URL says
    otherwise."""
    host = reachable_host(settings.bind_host)
    updates: dict[str, Any] = {}
    with_inbox = not environ.get("SMTP_HOST")
    if with_inbox:
        updates.update(smtp_host=host, smtp_port=settings.inbox_smtp_port, smtp_tls=False, smtp_starttls=False)
    if not environ.get("PUBLIC_CONFIRMATION_URL"):
        updates["public_confirmation_url"] = f"http://{host}:{settings.confirmation_port}"
    return settings.model_copy(update=updates), with_inbox


def environment_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def child_environment(service: Service, settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The runner's environment (secrets and tuning pass through as they are) with the service's own
    settings spelled out, so every child runs with exactly the settings the runner resolved."""
    env = dict(environ)
    env["PYTHONUNBUFFERED"] = "1"
    for name in service.environment:
        value = environment_value(getattr(settings, name.lower()))
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env
