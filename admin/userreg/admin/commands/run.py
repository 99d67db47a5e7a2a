"""`userreg run`: the whole system on this machine, against the local PostgreSQL and RabbitMQ.

Prepares the database and the topology (as `userreg migrate`), starts the services of
`local.services.SERVICES` as child processes of their own, waits for their health checks,
makes sure a demo app exists, prints the URLs and a curl that registers a user, streams the
children's logs, and stops them all on Ctrl-C or SIGTERM, or when one of them dies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shlex
import socket
from collections.abc import Mapping
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import select

from userreg.admin.commands.migrate import prepare
from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed
from userreg.admin.local.services import INBOX, SERVICES, Service
from userreg.admin.local.supervisor import (
    Output,
    Stopping,
    Supervisor,
    Unhealthy,
    find_script,
    install_stop_signals,
)
from userreg.shared.apps import create_app
from userreg.shared.db.models import App
from userreg.shared.settings import Settings, mask_url

DEMO_APP = "demo"
HEALTH_TIMEOUT_SECONDS = 90.0
ME = "userreg"


def reachable_host(bind_host: str) -> str:
    """Where a client on this machine reaches a server bound to `bind_host`."""
    return "127.0.0.1" if bind_host in ("", "0.0.0.0", "::") else bind_host


def local_settings(settings: Settings, environ: Mapping[str, str]) -> tuple[Settings, bool]:
    """The settings the children run with, and whether the local inbox runs: only when no SMTP
    server is configured, and then the mailer sends to it. Confirmation links point at the local
    confirmation-web unless PUBLIC_CONFIRMATION_URL says otherwise."""
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


def planned(with_inbox: bool) -> list[Service]:
    return [service for service in SERVICES if with_inbox or service is not INBOX]


def check_ports_free(services: list[Service], settings: Settings) -> None:
    """Fail early and clearly when a port is taken, rather than with a child's bind error."""
    for service in services:
        for port_setting in service.port_settings:
            port = getattr(settings, port_setting)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((reachable_host(settings.bind_host), port))
                except OSError:
                    raise CommandFailed(
                        f"port {port} for {service.name} is in use: stop what uses it, or set "
                        f"{port_setting.upper()} to a free port") from None


def base_url(settings: Settings, port_setting: str) -> str:
    return f"http://{reachable_host(settings.bind_host)}:{getattr(settings, port_setting)}"


async def demo_app(settings: Settings) -> tuple[App, bool]:
    """The app named "demo" (the oldest, if several), created with email confirmation on if missing."""
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await session.scalar(select(App).where(App.name == DEMO_APP).order_by(App.created_at).limit(1))
        if app is not None:
            return app, False
        return await create_app(session, DEMO_APP, email_confirmation_required=True), True


def register_curl(settings: Settings, app: App) -> str:
    """A ready-to-paste curl that registers a new user of the app (a fresh address each run)."""
    body = {"email": f"alice.{secrets.token_hex(3)}@example.com", "password": "wonderland", "name": "Alice"}
    url = f"{base_url(settings, 'registration_port')}/{app.app_id}/{app.rest_api_key}/users/register"
    return ("curl -sS -X POST -H 'Content-Type: application/json' "
            f"-d {shlex.quote(json.dumps(body, separators=(',', ':')))} {shlex.quote(url)}")


def banner(settings: Settings, with_inbox: bool, app: App, created: bool) -> list[str]:
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
        lines.append(f"  local inbox          {inbox}   (the emails; JSON at {inbox}/api/messages; "
                     f"SMTP on {reachable_host(settings.bind_host)}:{settings.inbox_smtp_port})")
    else:
        lines.append(f"  SMTP server          {settings.smtp_host}:{settings.smtp_port}")
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


async def run_local(args: argparse.Namespace, settings: Settings) -> None:
    output = Output()

    def say(text: str) -> None:
        output.line(ME, text)

    settings, with_inbox = local_settings(settings, os.environ)
    services = planned(with_inbox)
    check_ports_free(services, settings)
    try:
        commands = {service.name: find_script(service.command) for service in services}
    except FileNotFoundError as missing:
        raise CommandFailed(f"{missing} is not installed: run `make install`") from None

    say(f"database {mask_url(settings.database_dsn)}, RabbitMQ {mask_url(settings.amqp_dsn)}")
    prepared = await prepare(settings)
    say(f"database {prepared['database']} {'created and ' if prepared['databaseCreated'] else ''}migrated; "
        f"exchange {prepared['exchange']} declared")

    supervisor = Supervisor(output)
    undo_signals = install_stop_signals(asyncio.get_running_loop(), supervisor.request_stop)

    async def start(tier: list[Service], http: aiohttp.ClientSession, number: int) -> None:
        children = []
        for service in tier:
            child = await supervisor.start(service.name, [commands[service.name]],
                                           child_environment(service, settings, os.environ), tier=number)
            say(f"started {service.name} (pid {child.pid})")
            children.append((service, child))
        await asyncio.gather(*(
            child.wait_healthy(base_url(settings, service.port_setting) + service.health_path, http,
                               HEALTH_TIMEOUT_SECONDS)
            for service, child in children))
        for service, _child in children:
            say(f"{service.name} is healthy")

    try:
        async with aiohttp.ClientSession() as http:
            # What the others depend on first: the inbox must be there before the mailer sends.
            tiers = [[s for s in services if s is INBOX], [s for s in services if s is not INBOX]]
            for number, tier in enumerate(tier for tier in tiers if tier):
                await supervisor.guard(start(tier, http, number))
        app, created = await supervisor.guard(demo_app(settings))
        for line in banner(settings, with_inbox, app, created):
            output.plain(line)
        await supervisor.run_until_stopped()
    except Stopping:
        pass
    except Unhealthy as exc:
        raise CommandFailed(str(exc)) from None
    finally:
        await supervisor.stop_all()
        undo_signals()
    if supervisor.died is not None:
        raise CommandFailed(f"{supervisor.died.name} exited with code {supervisor.died.returncode}; "
                            "stopped the other services")
    say("stopped")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run", help="run the whole system locally (what `make run` does)",
        description="Migrate, then start registration, mailer, confirmation-web and (unless SMTP_HOST is set) a "
        "local inbox as child processes; print the URLs and a curl that registers a user of the demo app; "
        "stop everything on Ctrl-C. Honours DATABASE_URL, AMQP_URL, SMTP_*, the *_PORT settings and "
        "PUBLIC_CONFIRMATION_URL.")
    parser.set_defaults(handler=run_local)
