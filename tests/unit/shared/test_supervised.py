"""The runtime kit without a server: the supervised background-task lifecycle and the ops endpoints."""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from tests.support.polling import eventually
from userreg.shared.runtime import ops
from userreg.shared.runtime.tasks import State, Supervised, describe, redact, supervised_in


class Lives:
    """A part for the tests: records when each life started and ended; `plan` says how each
    life ends, in order ("fail", "return", "run" forever, or seconds to run then fail)."""

    def __init__(self, *plan: object) -> None:
        self.plan = list(plan)
        self.started: list[float] = []
        self.ended: list[float] = []

    async def __call__(self) -> None:
        self.started.append(time.monotonic())
        how = self.plan.pop(0) if self.plan else "run"
        try:
            if how == "fail":
                raise RuntimeError(f"boom {len(self.started)}")
            if how == "return":
                return
            if how == "run":
                await asyncio.Event().wait()
            await asyncio.sleep(float(how))
            raise ConnectionError("lost after a while")
        finally:
            self.ended.append(time.monotonic())

    def pauses(self) -> list[float]:
        """Between each life's end and the next one's start (the last life's end has none)."""
        return [start - end for end, start in zip(self.ended, self.started[1:], strict=False)]


def _assert_about(pauses: list[float], expected: list[float]) -> None:
    """Each pause at least as long as expected, and not much longer (timers are late, not early)."""
    assert len(pauses) == len(expected), pauses
    assert all(want <= pause < want + 0.15 for pause, want in zip(pauses, expected, strict=True)), pauses


def _restarts_metric(name: str) -> float:
    return REGISTRY.get_sample_value("userreg_background_task_restarts_total", {"task": name}) or 0.0


async def test_a_failing_part_is_restarted_with_a_doubling_back_off(caplog):
    lives = Lives("fail", "fail", "fail")
    part = Supervised("test-doubling", lives, initial_backoff=0.2, max_backoff=0.6)
    metric_before = _restarts_metric("test-doubling")
    with caplog.at_level(logging.WARNING, logger="userreg.shared.runtime.tasks"):
        async with part:
            await eventually(lambda: len(lives.started) == 4, timeout=5, what="the fourth life")
            assert part.state is State.RUNNING and part.ready
            assert part.restarts == 3
            assert part.last_error.startswith("RuntimeError: boom 3 (at test_supervised.py:")
    _assert_about(lives.pauses(), [0.2, 0.4, 0.6])  # doubling, then capped
    assert part.state is State.STOPPED
    assert _restarts_metric("test-doubling") - metric_before == 3
    failures = [record.getMessage() for record in caplog.records if "test-doubling failed" in record.getMessage()]
    assert len(failures) == 3  # each failure once, with its type and message
    assert "RuntimeError: boom 1" in failures[0] and "restarting in 0.2s" in failures[0]


async def test_a_part_that_returns_unexpectedly_is_restarted():
    lives = Lives("return")
    async with Supervised("test-returns", lives, initial_backoff=0.05) as part:
        await eventually(lambda: len(lives.started) == 2, timeout=5, what="the second life")
        assert part.restarts == 1 and part.last_error == "returned unexpectedly"


async def test_a_cancelled_error_the_part_raises_itself_is_a_failure_like_any_other():
    # aio-pika ends an operation on a closed connection with CancelledError: not a stop.
    lives = Lives("run")

    async def cancelled_from_inside() -> None:
        if not lives.started:
            lives.started.append(time.monotonic())
            raise asyncio.CancelledError()
        await lives()

    async with Supervised("test-inner-cancel", cancelled_from_inside, initial_backoff=0.05) as part:
        await eventually(lambda: len(lives.started) == 2 and part.state is State.RUNNING, timeout=5, what="a new life")
        assert part.last_error.startswith("CancelledError (at test_supervised.py:")


async def test_while_restarting_the_state_and_last_error_show_and_stop_is_immediate():
    lives = Lives("fail")
    part = Supervised("test-restarting", lives, initial_backoff=30)
    part.start()
    await eventually(lambda: part.state is State.RESTARTING, timeout=5, what="the part to restart")
    assert not part.ready
    assert part.restarts == 1 and part.last_error.startswith("RuntimeError: boom 1")
    started = time.monotonic()
    await part.stop()
    assert time.monotonic() - started < 1  # the back-off is not waited out
    assert part.state is State.STOPPED and len(lives.started) == 1


async def test_the_back_off_starts_again_after_a_healthy_life():
    lives = Lives("fail", "fail", 0.6, "fail")
    async with Supervised("test-healthy", lives, initial_backoff=0.2, healthy_seconds=0.5):
        await eventually(lambda: len(lives.started) == 5, timeout=5, what="the fifth life")
    # The third life ran healthy (longer than healthy_seconds): the back-off starts from 0.2 s again.
    _assert_about(lives.pauses(), [0.2, 0.4, 0.2, 0.4])


async def test_ready_asks_the_running_part():
    connected = False
    async with Supervised("test-readiness", Lives("run"), ready=lambda: connected) as part:
        await asyncio.sleep(0)
        assert part.state is State.RUNNING and not part.ready  # running, not yet ready
        connected = True
        assert part.ready
    assert not part.ready


async def test_stop_is_bounded_for_a_part_that_ignores_cancellation_for_a_while(caplog):
    ended = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(1.5)  # a driver call that does not return promptly when cancelled
            raise
        finally:
            ended.set()

    part = Supervised("test-stubborn", stubborn, stop_seconds=0.2)
    part.start()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="userreg.shared.runtime.tasks"):
        await part.stop()
    assert 0.2 <= time.monotonic() - started < 0.6
    assert part.state is State.STOPPED
    assert any("test-stubborn did not stop within 0.2s" in record.getMessage() for record in caplog.records)
    await asyncio.wait_for(ended.wait(), 5)  # it does end by itself, later (and is not restarted)
    await asyncio.sleep(0.1)
    assert part.restarts == 0


async def test_a_graceful_stop_lets_the_part_finish_and_does_not_restart_it():
    finishing = asyncio.Event()
    finished = []

    async def drains() -> None:
        await finishing.wait()
        await asyncio.sleep(0.1)  # the work in hand
        finished.append(True)

    async def ask() -> None:
        finishing.set()

    part = Supervised("test-graceful", drains, stop=ask, grace_seconds=5, stop_seconds=0.1)
    part.start()
    await asyncio.sleep(0.05)
    await part.stop()
    assert finished == [True] and part.restarts == 0 and part.state is State.STOPPED


async def test_a_graceful_stop_that_takes_too_long_is_cancelled():
    cancelled = []

    async def never_finishes() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def ask() -> None:
        pass

    part = Supervised("test-graceless", never_finishes, stop=ask, grace_seconds=0.2, stop_seconds=1)
    part.start()
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await part.stop()
    assert 0.2 <= time.monotonic() - started < 1 and cancelled == [True]


async def test_no_password_reaches_the_log(caplog):
    async def refused() -> None:
        raise ConnectionError("cannot reach amqp://guest:s3cret@broker:5672/ (dsn password=s3cret)")

    with caplog.at_level(logging.WARNING, logger="userreg.shared.runtime.tasks"):
        async with Supervised("test-secret", refused, initial_backoff=5) as part:
            await eventually(lambda: part.restarts == 1, timeout=5, what="the failure")
    assert "s3cret" not in caplog.text and "s3cret" not in part.last_error
    assert "amqp://guest:***@broker:5672/" in part.last_error
    assert redact("postgresql://u:p%40ss@db/x and postgresql://db/y") == "postgresql://u:***@db/x and postgresql://db/y"
    assert describe(ValueError()) == "ValueError"


async def test_supervised_in_starts_the_part_with_the_app_and_stops_it_after():
    key = web.AppKey("part", Supervised)
    lives = Lives("run")
    app = web.Application()
    app.cleanup_ctx.append(supervised_in(key, lambda _app: Supervised("test-app-part", lives)))
    app.router.add_get("/ready", ops.ready_view(broker=ops.running(key)))
    async with TestClient(TestServer(app)) as client:
        part = app[key]
        await eventually(lambda: lives.started, timeout=5, what="the part to start")
        assert part.state is State.RUNNING
        async with client.get("/ready") as response:
            assert (response.status, await response.json()) == (200, {"status": "ready", "broker": "ok"})
    assert part.state is State.STOPPED and len(lives.ended) == 1


async def test_ready_is_503_while_a_part_restarts():
    key = web.AppKey("part", Supervised)
    app = web.Application()
    app.cleanup_ctx.append(
        supervised_in(key, lambda _app: Supervised("test-ready-503", Lives("fail"), initial_backoff=30))
    )

    async def database_ok(_app: web.Application) -> None:
        return None

    async def database_away(_app: web.Application) -> None:
        raise OSError("connection refused")

    app.router.add_get("/ready", ops.ready_view(database=ops.reachable(database_ok), broker=ops.running(key)))
    app.router.add_get(
        "/ready-without-database", ops.ready_view(database=ops.reachable(database_away), broker=ops.running(key))
    )
    app.router.add_get("/health", ops.health)
    async with TestClient(TestServer(app)) as client:
        await eventually(lambda: app[key].state is State.RESTARTING, timeout=5, what="the part to fail")
        async with client.get("/ready") as response:
            assert response.status == 503
            assert await response.json() == {"status": "unavailable", "database": "ok", "broker": "unreachable"}
        async with client.get("/ready-without-database") as response:
            assert (await response.json())["database"] == "unreachable"
        async with client.get("/health") as response:
            assert (response.status, (await response.json())["status"]) == (200, "ok")
