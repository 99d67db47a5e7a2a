"""The migrations build exactly the schema the models describe: a model changed without a migration
(or the other way round) fails here, not in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from userreg.shared.db import Base  # with the mailer's tables (db/mail.py)


async def test_the_migrated_database_has_exactly_the_models_tables_columns_and_indexes(database_url):
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []
