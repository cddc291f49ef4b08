"""Short reads of a SQLite file run in the store's read threads (`Store.read`)."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from unibatch.store.db import open_store
from unibatch.store.tables import batches


async def test_reads_see_every_commit_in_a_thread_of_their_own_and_survive_dispose(
    tmp_path: Path,
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'reads.db'}")
    loop_thread = threading.get_ident()

    def count(conn: sa.Connection) -> tuple[int, int]:
        n = conn.execute(sa.select(sa.func.count()).select_from(batches)).scalar_one()
        return int(n), threading.get_ident()

    try:
        assert (await store.read(count))[0] == 0
        async with store.engine.begin() as conn:
            await conn.execute(
                batches.insert(),
                {
                    "id": "ubb_1",
                    "status": "pending",
                    "endpoint": "/v1/chat/completions",
                    "created_at": 1.0,
                    "metadata": {},
                    "errors": [],
                },
            )
        # Committed on the async engine's connection, read at once on the reader's.
        n, reader_thread = await store.read(count)
        assert n == 1 and reader_thread != loop_thread
        await store.engine.dispose()
        # As with any engine, a read after `dispose` starts afresh.
        assert (await store.read(count))[0] == 1
    finally:
        await store.aclose()
