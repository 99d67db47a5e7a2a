"""Mailer benchmark: events published to RabbitMQ → emails accepted by a local SMTP server.

One real mailer process (`python -m userreg.mailer`, default settings apart from where things are)
against a database and a topology of the benchmark's own, removed afterwards. The SMTP server is a
minimal aiosmtpd handler in this process that notes when each email's DATA was accepted (aiosmtpd
comes with the local inbox, tools/inbox, which `make bench` installs; the mailer does not need it).

* throughput at saturation: BENCH_MAILER_EVENTS events (default 3000) are queued before the mailer
  starts; emails/s = events / (last accepted − first accepted).
* latency below saturation: BENCH_MAILER_RATE events/s (default 100) for BENCH_MAILER_SECONDS
  (default 10); event published → email accepted, p50 / p99 / max.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
import aiohttp
from aiosmtpd.smtp import SMTP
from pydantic import SecretStr

from benchmarks.scratch import scratch_database, stop
from userreg.shared.apps import create_app
from userreg.shared.db import create_engine, create_sessionmaker
from userreg.shared.events import USER_REGISTERED, Confirmation, Event, EventUser
from userreg.shared.messaging import Topology, declare_topology, delete_topology
from userreg.shared.settings import Settings
from userreg.shared.tokens import confirmation_url, new_token

LOG = Path(__file__).resolve().parents[1] / "test-artifacts" / "logs" / "bench-mailer.log"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Sink:
    """Accepts every message; remembers when each event's email was accepted (by its Message-ID)."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self._waiters: list[tuple[int, asyncio.Future]] = []

    async def handle_DATA(self, server: SMTP, session: object, envelope) -> str:
        content: bytes = envelope.content
        start = content.find(b"Message-ID: <")
        if start >= 0:
            start += len(b"Message-ID: <")
            self.accepted[content[start : content.index(b".", start)].decode()] = time.monotonic()
        for count, future in self._waiters:
            if len(self.accepted) >= count and not future.done():
                future.set_result(None)
        return "250 OK"

    async def wait_for(self, count: int, timeout: float) -> None:
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((count, future))
        if len(self.accepted) >= count:
            future.set_result(None)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise SystemExit(
                f"only {len(self.accepted)} of {count} emails arrived within {timeout}s; see {LOG}"
            ) from None


def _event(app_id: str, base_url: str) -> Event:
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    return Event(
        type=USER_REGISTERED,
        app_id=app_id,
        user=EventUser(
            object_id=str(uuid.uuid4()).upper(),
            identity_property="email",
            identity=email,
            email=email,
            name="Bench User",
            properties={"email": email, "name": "Bench User"},
        ),
        confirmation=Confirmation(
            url=confirmation_url(base_url, app_id, new_token()), expires_at=datetime.now(UTC) + timedelta(days=1)
        ),
    )


def _message(event: Event) -> aio_pika.Message:
    return aio_pika.Message(
        body=event.to_bytes(),
        message_id=event.id,
        type=event.type,
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers={"x-app-id": event.app_id, "x-event-version": 1},
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux), to show the cost per email even
    when other processes compete for the cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _start_mailer(env: dict[str, str], port: int) -> asyncio.subprocess.Process:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "userreg.mailer", env={**os.environ, **env}, stdout=log, stderr=log
        )
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise SystemExit(f"the mailer exited with {process.returncode}; see {LOG}")
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with http.get(f"http://127.0.0.1:{port}/ready", timeout=aiohttp.ClientTimeout(1)) as r:
                    if r.status == 200:
                        return process
            await asyncio.sleep(0.1)
    raise SystemExit(f"the mailer did not become ready; see {LOG}")


async def run() -> None:
    base = Settings()
    events_count = int(os.environ.get("BENCH_MAILER_EVENTS", "3000"))
    rate = float(os.environ.get("BENCH_MAILER_RATE", "100"))
    seconds = float(os.environ.get("BENCH_MAILER_SECONDS", "10"))
    suffix = uuid.uuid4().hex[:8]
    topology = Topology(f"userreg.bench.{suffix}")
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(scratch_database(base, f"userreg_bench_mailer_{suffix}"))
        settings = base.model_copy(
            update={"database_url": SecretStr(database_url), "events_exchange": topology.exchange}
        )
        engine = create_engine(settings, pool_size=1, max_overflow=0)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                app = await create_app(session, "Bench", email_confirmation_required=True)
        finally:
            await engine.dispose()

        sink = Sink()
        loop = asyncio.get_running_loop()
        smtp_server = await loop.create_server(lambda: SMTP(sink, hostname="bench-sink", loop=loop), "127.0.0.1", 0)
        stack.push_async_callback(smtp_server.wait_closed)
        stack.callback(smtp_server.close)
        smtp_port = smtp_server.sockets[0].getsockname()[1]
        mailer_port = _free_port()
        env = {
            "DATABASE_URL": database_url,
            "AMQP_URL": settings.amqp_dsn,
            "EVENTS_EXCHANGE": topology.exchange,
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(smtp_port),
            "MAILER_PORT": str(mailer_port),
            "SMTP_TLS": "false",
            "SMTP_STARTTLS": "false",
            "SMTP_USERNAME": "",
        }
        connection = await aio_pika.connect(settings.amqp_dsn)
        stack.push_async_callback(connection.close)
        stack.push_async_callback(delete_topology, settings.amqp_dsn, topology)
        channel = await connection.channel(publisher_confirms=True)
        exchange = await declare_topology(channel, topology)

        # Throughput: a backlog, then the mailer drains it as fast as it can.
        backlog = [_event(app.app_id, settings.public_confirmation_url) for _ in range(events_count)]
        for start in range(0, len(backlog), 500):
            await asyncio.gather(
                *(exchange.publish(_message(event), routing_key=event.type) for event in backlog[start : start + 500])
            )
        mailer = await _start_mailer(env, mailer_port)
        stack.push_async_callback(stop, mailer)
        cpu_before = _cpu_seconds(mailer.pid)
        await sink.wait_for(events_count, timeout=max(120.0, events_count / 10))
        cpu_used = _cpu_seconds(mailer.pid) - cpu_before
        times = [sink.accepted[event.id] for event in backlog]
        throughput = (events_count - 1) / (max(times) - min(times))
        print(
            f"throughput at saturation: {throughput:.0f} emails/s "
            f"({events_count} queued events, one mailer process; "
            f"it used {cpu_used / events_count * 1000:.2f} ms CPU per email)",
            flush=True,
        )

        # Latency: a steady rate below saturation.
        paced = [_event(app.app_id, settings.public_confirmation_url) for _ in range(int(rate * seconds))]
        published: dict[str, float] = {}
        started = time.monotonic()
        for index, event in enumerate(paced):
            delay = started + index / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            published[event.id] = time.monotonic()
            await exchange.publish(_message(event), routing_key=event.type)
        await sink.wait_for(events_count + len(paced), timeout=60)
        latencies = [(sink.accepted[event_id] - at) * 1000 for event_id, at in published.items()]
        print(
            f"latency event→accepted at {rate:.0f} events/s ({len(paced)} events): "
            f"p50 {statistics.median(latencies):.1f} ms, p99 {_percentile(latencies, 0.99):.1f} ms, "
            f"max {max(latencies):.1f} ms",
            flush=True,
        )
