"""Apps and schemas are cached by the service, and a change in the database applies at once."""

from __future__ import annotations

from sqlalchemy import event, update

from tests.support.polling import eventually
from userreg.registration.keys import ENGINE, REGISTRAR
from userreg.registration.tenants import TenantCache
from userreg.shared.db import App, SchemaColumn
from userreg.shared.db.models import ColumnType


async def _listening(api) -> None:
    cache = api.client.app[REGISTRAR]._tenants
    await eventually(lambda: cache.listening, timeout=10, what="the tenant cache to listen")


async def _cached(api, unique_email) -> None:
    await _listening(api)
    cache = api.client.app[REGISTRAR]._tenants

    async def cached():
        # The app's creation may notify after a first read: register until the cache keeps it.
        assert (await api.register({"email": unique_email(), "password": "pw"}))[0] == 200
        return cache.held(api.app.app_id) is not None

    await eventually(cached, timeout=5, what="the app to stay cached")


async def test_the_app_is_not_read_again_while_nothing_changes(api_for, unique_email):
    api = await api_for()
    await _cached(api, unique_email)
    reads = []
    engine = api.client.app[ENGINE].sync_engine

    def count(conn, cursor, statement, parameters, context, executemany):
        if "FROM apps" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            assert (await api.register({"email": unique_email(), "password": "pw"}))[0] == 200
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert reads == []


async def test_a_settings_change_applies_to_the_next_request(api_for, unique_email, sessions):
    api = await api_for()
    for _ in range(20):  # each time with the app cached, and the change committed just before
        await _cached(api, unique_email)
        async with sessions() as session, session.begin():
            await session.execute(update(App).where(App.app_id == api.app.app_id).values(registration_enabled=False))
        assert (await api.register({"email": unique_email(), "password": "pw"}))[1].get("code") == 3009
        async with sessions() as session, session.begin():
            await session.execute(update(App).where(App.app_id == api.app.app_id).values(registration_enabled=True))


async def test_a_schema_change_applies_to_the_next_request(api_for, unique_email, sessions):
    api = await api_for()
    await _cached(api, unique_email)
    async with sessions() as session, session.begin():
        session.add(
            SchemaColumn(
                app_id=api.app.app_id,
                name_key="phone",
                name="phone",
                type=ColumnType.STRING,
                required=True,
                max_length=20,
                is_identity=False,
                built_in=False,
            )
        )
    assert (await api.register({"email": unique_email(), "password": "pw"}))[1].get("code") == 3012


def test_a_read_that_raced_with_a_change_is_not_kept():
    cache: TenantCache[str] = TenantCache("postgresql://unused")
    cache.listening = True
    generation = cache.generation
    cache._changed("A")  # a notification arrives while the read is in flight
    cache.put("A", "stale", generation)
    assert cache.held("A") is None
    cache.put("A", "fresh", cache.generation)
    assert cache.held("A") == "fresh"
    cache._changed("a")
    assert cache.held("A") is None


def test_without_its_listener_the_cache_answers_nothing():
    cache: TenantCache[str] = TenantCache("postgresql://unused")
    cache.put("A", "value", cache.generation)
    assert cache.held("A") is None
    cache.listening = True
    cache.put("A", "value", cache.generation)
    cache.listening = False
    assert cache.held("A") is None


def test_entries_expire():
    cache: TenantCache[str] = TenantCache("postgresql://unused", ttl_seconds=0)
    cache.listening = True
    cache.put("A", "value", cache.generation)
    assert cache.held("A") is None
