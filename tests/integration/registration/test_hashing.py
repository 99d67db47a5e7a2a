"""argon2id in the worker pool: PHC strings carrying the configured parameters, off the event loop,
a login rehashes a password made with weaker parameters, and the pool's queue is bounded (the
README's Security section): sized from the hash time measured at start, refusing at once when full,
dropping cancelled waiters. (tests/integration/registration/test_backpressure.py has the same
through HTTP.)"""

from __future__ import annotations

import asyncio
import math
import re
import time

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from tests.integration.registration.client import Api
from tests.support.polling import eventually
from userreg.registration import errors
from userreg.shared.db import User
from userreg.shared.hashing import Argon2Parameters, HashingBusy, HashingUnavailable, PasswordHashing
from userreg.shared.hashing.pool import IN_FLIGHT, IN_FLIGHT_SECONDS, MIN_QUEUED_PER_WORKER

PHC = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")
# What the queue tests hash with: slow enough (tens of ms) that a queue builds up.
OWASP = Argon2Parameters(time_cost=2, memory_kib=19456, parallelism=1)


async def _hash_of(sessions, object_id: str) -> str:
    async with sessions() as session:
        return await session.scalar(select(User.password_hash).where(User.object_id == object_id))


async def test_stored_hashes_are_argon2id_phc_strings_with_the_configured_parameters(
    start_service, make_app, unique_email, sessions
):
    client = await start_service(argon2_memory_kib=1024, argon2_time_cost=3, argon2_parallelism=2)
    api = Api(client, await make_app())
    status, user = await api.register({"email": unique_email(), "password": "correct horse"})
    assert status == 200
    stored = await _hash_of(sessions, user["objectId"])
    assert PHC.fullmatch(stored).groups() == ("1024", "3", "2")
    assert PasswordHasher().verify(stored, "correct horse")


async def test_the_owasp_defaults_are_what_is_stored(start_service, make_app, unique_email, sessions):
    client = await start_service(argon2_memory_kib=19456, argon2_time_cost=2, argon2_parallelism=1)
    api = Api(client, await make_app())
    _, user = await api.register({"email": unique_email(), "password": "pw"})
    assert PHC.fullmatch(await _hash_of(sessions, user["objectId"])).groups() == ("19456", "2", "1")


async def test_a_login_rehashes_a_password_hashed_with_older_parameters(
    start_service, make_app, unique_email, sessions
):
    app = await make_app()
    email = unique_email()
    weak = Api(await start_service(argon2_memory_kib=8, argon2_time_cost=1), app)
    _, user = await weak.register({"email": email, "password": "pw"})
    strong = Api(await start_service(argon2_memory_kib=2048, argon2_time_cost=2), app)
    assert (await strong.login(email, "pw"))[0] == 200
    assert PHC.fullmatch(await _hash_of(sessions, user["objectId"])).groups()[:2] == ("2048", "2")
    assert (await strong.login(email, "pw"))[0] == 200


async def test_hashing_does_not_block_the_event_loop():
    hashing = PasswordHashing(Argon2Parameters(time_cost=3, memory_kib=32768, parallelism=1), workers=1)
    await hashing.start()
    try:
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.perf_counter()
        hashed = await hashing.hash("pw")
        elapsed = time.perf_counter() - started
        ticker.cancel()
        assert hashed.startswith("$argon2id$")
        # The loop kept turning while a worker hashed (a blocked loop would have ticked ~0 times).
        assert ticks >= elapsed / 0.001 * 0.2, (ticks, elapsed)
        assert await hashing.verify(hashed, "pw") == (True, False)
        assert await hashing.verify(hashed, "nope") == (False, False)
        assert await hashing.verify(None, "pw") == (False, False)
        assert await hashing.verify(hashed, "\ud800") == (False, False)
    finally:
        await hashing.close()


async def test_a_dead_worker_fails_its_requests_and_is_replaced():
    hashing = PasswordHashing(Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1), workers=1)
    await hashing.start()
    try:
        [worker] = hashing._pool
        worker.process.kill()
        await asyncio.to_thread(worker.process.join, 5)
        await eventually(lambda: not worker.alive, timeout=5, what="the pool to notice the dead worker")
        assert (await hashing.hash("pw")).startswith("$argon2id$")  # a new worker took over
        assert hashing._pool[0] is not worker
    finally:
        await hashing.close()


async def test_workers_end_when_the_service_side_of_their_socket_closes():
    """As when the service is killed with SIGKILL: its sockets close, and so do the workers."""
    hashing = PasswordHashing(Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1), workers=2)
    await hashing.start()
    # A killed service is not there to start other workers: take them out of the pool's reach.
    workers, hashing._pool = hashing._pool, []
    processes = [worker.process for worker in workers]
    for worker in workers:
        worker._writer.transport.abort()
    for process in processes:
        await asyncio.to_thread(process.join, 5)
        assert process.exitcode == 0
    await hashing.close()


def test_the_default_cost_meets_owasp_and_a_cheaper_one_is_never_silent(caplog):
    from userreg.shared.settings import Settings

    defaults = Settings(_env_file=None)
    with caplog.at_level("WARNING", logger="userreg.shared.hashing.worker"):
        assert Argon2Parameters.from_settings(defaults).meets_owasp_minimum
        assert caplog.records == []
        cheap = Argon2Parameters.from_settings(defaults.model_copy(update={"argon2_memory_kib": 8}))
    assert not cheap.meets_owasp_minimum
    assert "below OWASP's minimum" in caplog.text


async def _hashed(hashing: PasswordHashing) -> int:
    """How many passwords the pool's workers have hashed or verified so far (a ping goes straight
    into the socket, behind whatever is in flight)."""
    return sum(await asyncio.gather(*(worker.call("ping") for worker in hashing._pool)))


async def _started(hashing: PasswordHashing) -> PasswordHashing:
    await hashing.start()
    return hashing


async def test_the_queue_holds_hash_queue_seconds_of_the_hashing_measured_at_start():
    hashing = await _started(PasswordHashing(OWASP, workers=1, queue_seconds=0.5))
    try:
        # What start() measured is what a hash takes (give or take a loaded machine).
        started = time.perf_counter()
        for _ in range(3):
            await hashing.hash("pw")
        one_hash = (time.perf_counter() - started) / 3
        assert one_hash / 3 < hashing.seconds_per_hash < one_hash * 3, (hashing.seconds_per_hash, one_hash)
        assert hashing.capacity == max(MIN_QUEUED_PER_WORKER, math.ceil(0.5 / hashing.seconds_per_hash))
        assert hashing.in_flight == IN_FLIGHT
    finally:
        await hashing.close()
    # Hashes cheaper than the event loop's round trip: more of them in a worker's socket at once.
    cheap = await _started(
        PasswordHashing(Argon2Parameters(time_cost=1, memory_kib=8, parallelism=1), workers=1, queue_seconds=0.5)
    )
    try:
        assert cheap.in_flight == max(IN_FLIGHT, math.floor(IN_FLIGHT_SECONDS / cheap.seconds_per_hash))
        assert cheap.capacity == math.ceil(0.5 / cheap.seconds_per_hash) > 100
    finally:
        await cheap.close()
    # However slow the hashes, a burst as large as the pool still waits rather than being refused.
    tiny = await _started(PasswordHashing(OWASP, workers=2, queue_seconds=0.001))
    try:
        assert tiny.capacity == MIN_QUEUED_PER_WORKER * 2
    finally:
        await tiny.close()


async def test_a_full_queue_refuses_at_once_with_a_retry_after_and_hashes_nothing_more():
    hashing = await _started(PasswordHashing(OWASP, workers=1, queue_seconds=1.0))
    try:
        before = await _hashed(hashing)
        room = hashing.in_flight + hashing.capacity  # one worker's socket, then the queue
        accepted = [asyncio.create_task(hashing.hash(f"pw {n}")) for n in range(room)]
        await asyncio.sleep(0)  # each is in the worker's socket or in the queue now
        known = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("x")
        for call in (hashing.hash("one more"), hashing.verify(None, "one more"), hashing.verify(known, "x")):
            # Refused in the call's first step, before it could wait for anything.
            with pytest.raises(HashingBusy) as busy:
                call.send(None)
            # The shared pool's refusal, as the service answers it (the middleware's mapping).
            answered = errors.HashingBusy(busy.value.retry_after_seconds)
            assert answered.code == 9009 and answered.status == 503
            # About the queue's seconds of work ahead: the queue and what is in the socket.
            assert 1 <= answered.retry_after_seconds <= math.ceil(hashing.queue_seconds) + 1
            assert answered.headers() == {"Retry-After": str(answered.retry_after_seconds)}
        assert all(hashed.startswith("$argon2id$") for hashed in await asyncio.gather(*accepted))
        assert await _hashed(hashing) == before + len(accepted)  # the refused ones were never hashed
        assert (await hashing.verify(await hashing.hash("pw"), "pw"))[0]  # room again
    finally:
        await hashing.close()


async def test_cancelled_waiters_are_dropped_and_the_answers_still_reach_their_own_callers():
    hashing = await _started(PasswordHashing(OWASP, workers=1, queue_seconds=30))
    try:
        assert hashing.capacity >= 50
        before = await _hashed(hashing)
        abandoned = [asyncio.create_task(hashing.hash("abandoned")) for _ in range(hashing.in_flight + 50)]
        await asyncio.sleep(0)
        for call in abandoned:  # as aiohttp cancels the handlers of clients that went away
            call.cancel()
        await asyncio.gather(*abandoned, return_exceptions=True)
        assert all(call.cancelled() for call in abandoned)
        started = time.perf_counter()
        mine = await hashing.hash("mine")
        took = time.perf_counter() - started
        # Only the requests already in the socket were ahead of it (hashed, their answers discarded)…
        assert took < 50 * hashing.seconds_per_hash / 3, (took, hashing.seconds_per_hash)
        # …and its answer is its own, not one meant for an abandoned request.
        assert await hashing.verify(mine, "mine") == (True, False)
        # The ones in the socket, mine and its verification: nothing else was hashed.
        assert await _hashed(hashing) == before + hashing.in_flight + 2
        assert hashing._queued == 0
    finally:
        await hashing.close()


async def test_a_dead_worker_fails_only_what_it_held_and_its_replacement_takes_the_queue_over():
    hashing = await _started(PasswordHashing(OWASP, workers=1, queue_seconds=5))
    try:
        [worker] = hashing._pool
        calls = [asyncio.create_task(hashing.hash(f"pw {n}")) for n in range(hashing.in_flight + 4)]
        await asyncio.sleep(0)
        worker.process.kill()
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=30)
        failed = [result for result in results if isinstance(result, HashingUnavailable)]
        hashed = [result for result in results if isinstance(result, str)]
        assert len(failed) <= hashing.in_flight and len(failed) + len(hashed) == len(calls), results
        assert len(hashed) >= 4 and all(result.startswith("$argon2id$") for result in hashed)
        assert hashing._pool[0] is not worker and hashing._pool[0].alive
    finally:
        await hashing.close()


async def test_closing_fails_what_waits_instead_of_leaving_it_waiting():
    hashing = await _started(PasswordHashing(OWASP, workers=1, queue_seconds=5))
    calls = [asyncio.create_task(hashing.hash(f"pw {n}")) for n in range(hashing.in_flight + 4)]
    await asyncio.sleep(0)
    await hashing.close()
    results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=10)
    assert all(isinstance(result, HashingUnavailable) for result in results[hashing.in_flight :]), results
    with pytest.raises(HashingUnavailable):
        await hashing.hash("pw")
