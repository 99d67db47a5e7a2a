"""argon2id in the worker pool: PHC strings carrying the configured parameters, off the event loop,
and a login rehashes a password made with weaker parameters."""

from __future__ import annotations

import asyncio
import re
import time

from argon2 import PasswordHasher
from sqlalchemy import select

from tests.registration.conftest import Api
from tests.support.polling import eventually
from userreg.registration.hashing import Argon2Parameters, PasswordHashing
from userreg.shared.db import User

PHC = re.compile(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


async def _hash_of(sessions, object_id: str) -> str:
    async with sessions() as session:
        return await session.scalar(select(User.password_hash).where(User.object_id == object_id))


async def test_stored_hashes_are_argon2id_phc_strings_with_the_configured_parameters(
        start_service, make_app, unique_email, sessions):
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
        start_service, make_app, unique_email, sessions):
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
    processes = [worker.process for worker in hashing._pool]
    for worker in hashing._pool:
        worker._writer.transport.abort()
    for process in processes:
        await asyncio.to_thread(process.join, 5)
        assert process.exitcode == 0
    await hashing.close()


def test_the_default_cost_meets_owasp_and_a_cheaper_one_is_never_silent(caplog):
    from userreg.registration.hashing import Argon2Parameters
    from userreg.shared.settings import Settings

    defaults = Settings(_env_file=None)
    with caplog.at_level("WARNING", logger="userreg.registration.hashing"):
        assert Argon2Parameters.from_settings(defaults).meets_owasp_minimum
        assert caplog.records == []
        cheap = Argon2Parameters.from_settings(defaults.model_copy(update={"argon2_memory_kib": 8}))
    assert not cheap.meets_owasp_minimum
    assert "below OWASP's minimum" in caplog.text
