"""The migration chain produces exactly the schema in the table modules (the store's and
the gateway's, one metadata), on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from unibatch.gateway import tables as gateway_tables
from unibatch.store.db import create_engine, upgrade
from unibatch.store.tables import metadata

assert gateway_tables.metadata is metadata


async def test_migrations_match_tables(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade(engine)
        await upgrade(engine)  # a second run is a no-op

        def diff(conn: sa.Connection) -> list[object]:
            return list(compare_metadata(MigrationContext.configure(conn), metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
    finally:
        await engine.dispose()
