"""The unit tests (tests/unit) are pure: rules, rendering, composition with fakes. They pass with
PostgreSQL and RabbitMQ unreachable, so a newcomer can run them anywhere, and none of them quietly
starts to need a server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    """A port nothing listens on (bound and released: refused from then on)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_unit_tests_pass_with_postgresql_and_rabbitmq_unreachable():
    port = _closed_port()
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/unreachable",
        "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/unit", "-q", "-n", "0", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "error" not in run.stdout.splitlines()[-1], run.stdout[-2000:]
