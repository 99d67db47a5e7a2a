"""Compose gives each service long enough to shut down by itself before it kills it: the bounds
of each service's own graceful shutdown, read from its code, against its `stop_grace_period`."""

from __future__ import annotations

import re

import pytest

from tests.system.test_compose import CONTAINERISED, compose_service
from userreg.admin.local.services import CONFIRMATION_WEB, CONSOLE, MAILER, REGISTRATION, Service
from userreg.shared.settings import Settings


def shutdown_bound_seconds(service: Service) -> float:
    """The longest the service's own graceful shutdown may take, from the bounds in its code: what
    compose must wait after SIGTERM before it kills the container."""
    from userreg.shared.runtime import tasks

    settings = Settings.model_validate(
        {name.lower(): value for name, value in compose_service(service)["environment"].items()}
    )
    # A supervised background part (an outbox relay, the retention task) is cancelled and waited
    # for this long; one that was asked to finish first is given its grace before that.
    supervised = tasks.STOP_SECONDS
    if service is REGISTRATION:
        from userreg.registration import __main__ as main
        from userreg.shared.hashing import pool as hashing

        # Requests in flight, the outbox relay, then the hashing pool (a replacement worker under
        # way, then each worker, in parallel: its answers, its exit, its exit after a kill).
        return main.SHUTDOWN_TIMEOUT_SECONDS + supervised + 4 * hashing._STOP_SECONDS
    if service is CONFIRMATION_WEB:
        from userreg.confirmation_web import __main__ as main

        # Requests in flight, then the outbox relay.
        return main.SHUTDOWN_GRACE_SECONDS + supervised
    if service is CONSOLE:
        from userreg.console import __main__ as main
        from userreg.shared.hashing import pool as hashing

        # Requests in flight, then its password-hashing worker (as registration's pool stops).
        return main.SHUTDOWN_GRACE_SECONDS + 4 * hashing._STOP_SECONDS
    if service is MAILER:
        from userreg.mailer import app

        # run_app's shutdown_timeout (5 s, mailer/__main__.py); the retention task; the consumer,
        # which drains the messages in hand (2 × SMTP_TIMEOUT + 5 s, consumer.py) within its grace,
        # and is cancelled after it; then the sent emails still being recorded (DeliveryLog.close, 5 s).
        drain = 2 * settings.smtp_timeout + 5
        return 5 + supervised + (drain + app.STOP_MARGIN_SECONDS) + supervised + 5
    raise AssertionError(f"no shutdown bound known for {service.name}")


def seconds(duration: str) -> float:
    """Compose's duration (`90s`, `1m30s`, `1m`) in seconds."""
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", str(duration))
    assert match and any(match.groups()), f"not a duration compose reads the way this test does: {duration}"
    return int(match[1] or 0) * 60 + int(match[2] or 0)


@pytest.mark.parametrize("service", CONTAINERISED, ids=lambda s: s.name)
def test_compose_waits_for_each_service_to_shut_down_before_killing_it(service):
    # Compose sends SIGTERM, then SIGKILL after stop_grace_period (10 s unless set): a service
    # killed mid-shutdown drops the requests, emails or events it had in hand.
    grace = compose_service(service).get("stop_grace_period")
    assert grace is not None, f"{service.name}: compose's default 10 s grace is shorter than its shutdown"
    # A few seconds more for closing the connections (each close is bounded by the command timeout).
    assert seconds(grace) >= shutdown_bound_seconds(service) + 5, (
        f"{service.name}: stop_grace_period {grace} is shorter than its shutdown "
        f"({shutdown_bound_seconds(service):.0f} s) and a margin"
    )
