"""What `userreg run` prints once everything is up: the URLs, the demo app, the console's first
operator (with its password, the one time it is shown) and a curl that registers a user."""

from __future__ import annotations

import json
import secrets
import shlex

from userreg.admin.local.environment import base_url, reachable_host
from userreg.admin.local.first_operator import FirstOperator
from userreg.shared.db.models import App
from userreg.shared.settings import Settings


def register_curl(settings: Settings, app: App) -> str:
    """A ready-to-paste curl that registers a new user of the app (a fresh address each run)."""
    body = {"email": f"alice.{secrets.token_hex(3)}@example.com", "password": "wonderland", "name": "Alice"}
    url = f"{base_url(settings, 'registration_port')}/{app.app_id}/{app.rest_api_key}/users/register"
    return (
        "curl -sS -X POST -H 'Content-Type: application/json' "
        f"-d {shlex.quote(json.dumps(body, separators=(',', ':')))} {shlex.quote(url)}"
    )


def console_lines(settings: Settings, operator: FirstOperator | None) -> list[str]:
    """The console's URL; with the operator made by this run, its email and password (only now:
    the database keeps only the password's hash)."""
    lines = [f"  console              {base_url(settings, 'console_port')}   (operators sign in here; /health)"]
    if operator is not None:
        lines += [
            "",
            f"  console operator created: {operator.email}   password: {operator.password}",
            "  (shown this once: keep it; `userreg operator create EMAIL` adds operators)",
        ]
    return lines


def banner(settings: Settings, with_inbox: bool, app: App, created: bool, operator: FirstOperator | None) -> list[str]:
    registration = base_url(settings, "registration_port")
    lines = [
        "",
        "userreg is running; Ctrl-C stops everything.",
        "",
        f"  registration API     {registration}   (OpenAPI: {registration}/openapi.json; /health /ready /metrics)",
        f"  confirmation pages   {settings.public_confirmation_url}",
        f"  mailer               {base_url(settings, 'mailer_port')}   (/health /ready /metrics)",
    ]
    if with_inbox:
        inbox = base_url(settings, "inbox_http_port")
        lines.append(
            f"  local inbox          {inbox}   (the emails; JSON at {inbox}/api/messages; "
            f"SMTP on {reachable_host(settings.bind_host)}:{settings.inbox_smtp_port})"
        )
    else:
        lines.append(f"  SMTP server          {settings.smtp_host}:{settings.smtp_port}")
    lines += console_lines(settings, operator)
    lines += [
        "",
        f"  demo app {'created' if created else 'reused'}: appId {app.app_id}, REST API key {app.rest_api_key}",
        f"  (email confirmation {'required' if app.email_confirmation_required else 'off'}; "
        "`userreg app show demo` shows its settings)",
        "",
        "Register a user:",
        "",
        register_curl(settings, app),
        "",
    ]
    return lines
