"""`userreg run`: the whole system on this machine, against the local PostgreSQL and RabbitMQ.

Prepares the database and the topology (as `userreg migrate`), starts the services of
`local.services.SERVICES` (the console among them) as child processes of their own, waits for
their health checks, makes sure a demo app and a console operator exist, prints the URLs (and the
first operator's password, the one time there is one) and a curl that registers a user, streams
the children's logs, and stops them all on Ctrl-C or SIGTERM, or when one of them dies.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import aiohttp
from sqlalchemy import select

from userreg.admin.commands.migrate import prepare
from userreg.admin.database import open_database
from userreg.admin.errors import CommandFailed
from userreg.admin.local.banner import banner
from userreg.admin.local.environment import base_url, child_environment, local_settings, reachable_host
from userreg.admin.local.first_operator import EMAIL_VARIABLE, ensure_first_operator, first_operator_email
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
                        f"{port_setting.upper()} to a free port"
                    ) from None


async def demo_app(settings: Settings) -> tuple[App, bool]:
    """The app named "demo" (the oldest, if several), created with email confirmation on if missing."""
    async with open_database(settings) as sessions, sessions() as session, session.begin():
        app = await session.scalar(select(App).where(App.name == DEMO_APP).order_by(App.created_at).limit(1))
        if app is not None:
            return app, False
        return await create_app(session, DEMO_APP, email_confirmation_required=True), True


async def run_local(args: argparse.Namespace, settings: Settings) -> None:
    output = Output()

    def say(text: str) -> None:
        output.line(ME, text)

    settings, with_inbox = local_settings(settings, os.environ)
    services = planned(with_inbox)
    first_operator_email(os.environ)  # a bad FIRST_OPERATOR_EMAIL fails before anything starts
    check_ports_free(services, settings)
    try:
        commands = {service.name: find_script(service.command) for service in services}
    except FileNotFoundError as missing:
        raise CommandFailed(f"{missing} is not installed: run `make install`") from None

    say(f"database {mask_url(settings.database_dsn)}, RabbitMQ {mask_url(settings.amqp_dsn)}")
    prepared = await prepare(settings)
    say(
        f"database {prepared['database']} {'created and ' if prepared['databaseCreated'] else ''}migrated; "
        f"exchange {prepared['exchange']} declared"
    )

    supervisor = Supervisor(output)
    undo_signals = install_stop_signals(asyncio.get_running_loop(), supervisor.request_stop)

    async def start(tier: list[Service], http: aiohttp.ClientSession, number: int) -> None:
        children = []
        for service in tier:
            child = await supervisor.start(
                service.name, [commands[service.name]], child_environment(service, settings, os.environ), tier=number
            )
            say(f"started {service.name} (pid {child.pid})")
            children.append((service, child))
        await asyncio.gather(
            *(
                child.wait_healthy(
                    base_url(settings, service.port_setting) + service.health_path, http, HEALTH_TIMEOUT_SECONDS
                )
                for service, child in children
            )
        )
        for service, _child in children:
            say(f"{service.name} is healthy")

    try:
        async with aiohttp.ClientSession() as http:
            # What the others depend on first: the inbox must be there before the mailer sends.
            tiers = [[s for s in services if s is INBOX], [s for s in services if s is not INBOX]]
            for number, tier in enumerate(tier for tier in tiers if tier):
                await supervisor.guard(start(tier, http, number))
        app, created = await supervisor.guard(demo_app(settings))
        operator = await supervisor.guard(ensure_first_operator(settings, os.environ))
        for line in banner(settings, with_inbox, app, created, operator):
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
        raise CommandFailed(
            f"{supervisor.died.name} exited with code {supervisor.died.returncode}; stopped the other services"
        )
    say("stopped")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run the whole system locally (what `make run` does)",
        description="Migrate, then start registration, mailer, confirmation-web, the console and (unless "
        "SMTP_HOST is set) a local inbox as child processes; create a first console operator when there is "
        f"none ({EMAIL_VARIABLE}, default admin@localhost; its generated password is printed once); print "
        "the URLs and a curl that registers a user of the demo app; stop everything on Ctrl-C. Honours "
        "DATABASE_URL, AMQP_URL, SMTP_*, the *_PORT settings and PUBLIC_CONFIRMATION_URL.",
    )
    parser.set_defaults(handler=run_local)
