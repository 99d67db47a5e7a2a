"""The local runner's parts without the services: settings it hands down, the curl it prints, and
the supervisor (with small stand-in processes)."""

from __future__ import annotations

import asyncio
import io
import json
import shlex
import signal
import sys

import pytest

from tests.support.polling import eventually
from userreg.admin.commands.run import planned
from userreg.admin.errors import CommandError
from userreg.admin.local.banner import banner, register_curl
from userreg.admin.local.environment import child_environment, local_settings
from userreg.admin.local.first_operator import EMAIL_VARIABLE, FirstOperator, first_operator_email
from userreg.admin.local.services import CONSOLE, INBOX, MAILER, REGISTRATION, SERVICES
from userreg.admin.local.supervisor import Output, Stopping, Supervisor
from userreg.shared.db.models import App
from userreg.shared.settings import Settings

BASE = Settings.model_construct()


def test_without_smtp_host_the_mailer_sends_to_the_local_inbox():
    settings = BASE.model_copy(update={"inbox_smtp_port": 2525, "confirmation_port": 9081})
    resolved, with_inbox = local_settings(settings, {})
    assert with_inbox and planned(with_inbox) == list(SERVICES)
    env = child_environment(MAILER, resolved, {"PATH": "/bin", "SMTP_PASSWORD": "kept"})
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_TLS"]) == ("127.0.0.1", "2525", "false")
    assert env["PATH"] == "/bin" and env["SMTP_PASSWORD"] == "kept", "the rest of the environment passes through"
    assert child_environment(REGISTRATION, resolved, {})["PUBLIC_CONFIRMATION_URL"] == "http://127.0.0.1:9081"


def test_with_smtp_host_no_inbox_runs_and_the_configured_values_stay():
    settings = BASE.model_copy(
        update={
            "smtp_host": "mail.example.com",
            "smtp_port": 587,
            "smtp_starttls": True,
            "public_confirmation_url": "https://confirm.example.com",
        }
    )
    resolved, with_inbox = local_settings(
        settings, {"SMTP_HOST": "mail.example.com", "PUBLIC_CONFIRMATION_URL": "https://confirm.example.com"}
    )
    assert not with_inbox and INBOX not in planned(with_inbox)
    env = child_environment(MAILER, resolved, {})
    assert (env["SMTP_HOST"], env["SMTP_PORT"], env["SMTP_STARTTLS"]) == ("mail.example.com", "587", "true")
    assert child_environment(REGISTRATION, resolved, {})["PUBLIC_CONFIRMATION_URL"] == "https://confirm.example.com"


def test_every_child_gets_exactly_the_settings_the_runner_resolved():
    resolved, _ = local_settings(BASE.model_copy(update={"registration_port": 18080}), {})
    for service in SERVICES:
        env = child_environment(service, resolved, {})
        child = Settings(_env_file=None, **{name.lower(): env[name] for name in service.environment})
        for name in service.environment:
            assert getattr(child, name.lower()) == getattr(resolved, name.lower()), (service.name, name)


def test_the_curl_registers_a_fresh_user_of_the_app():
    app = App(app_id="A" * 8 + "-0000-0000-0000-" + "0" * 12, rest_api_key="KEY", name="demo")
    first, second = register_curl(BASE, app), register_curl(BASE, app)
    argv = shlex.split(first)
    assert argv[:2] == ["curl", "-sS"] and argv[argv.index("-H") + 1] == "Content-Type: application/json"
    body = json.loads(argv[argv.index("-d") + 1])
    assert set(body) == {"email", "password", "name"}
    assert argv[-1] == f"http://127.0.0.1:8080/{app.app_id}/KEY/users/register"
    assert first != second, "each run prints a new address, so pasting it again registers another user"


def test_the_banner_shows_the_console_and_its_first_operator_only_when_made_now():
    app = App(
        app_id="A" * 8 + "-0000-0000-0000-" + "0" * 12,
        rest_api_key="KEY",
        name="demo",
        email_confirmation_required=True,
    )
    settings = BASE.model_copy(update={"console_port": 18083})
    operator = FirstOperator("admin@localhost", "generated-password-123")
    first = "\n".join(banner(settings, True, app, True, operator))
    assert "http://127.0.0.1:18083" in first
    assert "admin@localhost" in first and "generated-password-123" in first
    later = "\n".join(banner(settings, True, app, False, None))
    assert "http://127.0.0.1:18083" in later and "operator created" not in later
    assert "generated-password-123" not in repr(operator), "the password is never in a repr (logs, tracebacks)"


def test_the_first_operators_email_comes_from_the_environment_or_is_admin_at_localhost():
    assert first_operator_email({}) == "admin@localhost"
    assert first_operator_email({EMAIL_VARIABLE: " ops@example.com "}) == "ops@example.com"
    with pytest.raises(CommandError, match=EMAIL_VARIABLE):
        first_operator_email({EMAIL_VARIABLE: "not an address"})


def test_the_console_runs_with_the_ports_it_asks_and_the_smtp_server_it_sends_test_emails_to():
    resolved, _ = local_settings(BASE.model_copy(update={"inbox_smtp_port": 2525, "registration_port": 18080}), {})
    assert CONSOLE in planned(True) and CONSOLE in planned(False)
    env = child_environment(CONSOLE, resolved, {})
    assert (env["CONSOLE_PORT"], env["REGISTRATION_PORT"], env["SMTP_PORT"]) == ("8083", "18080", "2525")
    assert env["PUBLIC_CONFIRMATION_URL"] == resolved.public_confirmation_url


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
POLITE = "import time; print('up', flush=True); time.sleep(60)"


async def test_supervisor_prefixes_output_and_stops_every_child():
    stream = io.StringIO()
    supervisor = Supervisor(Output(stream))
    polite = await supervisor.start("polite", python(POLITE), {}, tier=1)
    stubborn = await supervisor.start("stubborn", python(STUBBORN), {}, tier=0)
    await asyncio.sleep(0)

    await eventually(
        lambda: "stubborn        | up" in stream.getvalue() and "polite          | up" in stream.getvalue(),
        timeout=15,
        what="both children to print",
    )
    # SIGTERM first; what ignores it is killed when the grace period is over.
    await asyncio.gather(polite.stop(), stubborn.stop(grace=0.5))
    assert polite.returncode == -signal.SIGTERM
    assert stubborn.returncode == -signal.SIGKILL
    assert "did not stop within" in stream.getvalue()


async def test_guard_raises_stopping_when_a_child_dies_or_a_stop_is_asked():
    supervisor = Supervisor(Output(io.StringIO()))
    await supervisor.start("short", python("import sys; sys.exit(3)"), {})
    with pytest.raises(Stopping):
        await supervisor.guard(asyncio.sleep(30))
    assert supervisor.died is not None and supervisor.died.returncode == 3

    calm = Supervisor(Output(io.StringIO()))
    child = await calm.start("calm", python(POLITE), {})
    assert await calm.guard(asyncio.sleep(0, result="done")) == "done"
    asyncio.get_running_loop().call_later(0.1, calm.request_stop)
    with pytest.raises(Stopping):
        await calm.guard(asyncio.sleep(30))
    assert calm.died is None
    await calm.stop_all()
    assert child.returncode == -signal.SIGTERM
