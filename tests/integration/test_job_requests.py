"""`Store.job_requests`, what an upload reads: a job's requests in input order, chunk by
chunk, on both databases; on SQLite read ahead from one snapshot in a thread of its own,
which a read stopped half way gives back."""

from __future__ import annotations

import sqlite3
from typing import Any

from unibatch import codec
from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.providers.registry import ProviderSet
from unibatch.store.lite import sqlite_path


def _lines(n: int) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"q-{i:04d}",
            "body": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": i}]},
        }
        for i in range(n)
    ]


async def test_a_jobs_requests_in_input_order_chunk_by_chunk(database_url: str) -> None:
    engine = await Engine.open(
        database_url, settings=Settings(), providers=ProviderSet({"OPENAI_API_KEY": "test"})
    )
    try:
        batch_id = await engine.create_batch(_lines(25))
        (job,) = await engine.store.jobs_of(batch_id)
        chunks = [chunk async for chunk in engine.store.job_requests(job.id, 10)]
        assert [len(chunk) for chunk in chunks] == [10, 10, 5]
        rows = [row for chunk in chunks for row in chunk]
        assert [(seq, custom_id) for seq, custom_id, _ in rows] == [
            (i, f"q-{i:04d}") for i in range(25)
        ]
        first = codec.unpack(rows[0][2])
        assert first["messages"] == [{"role": "user", "content": 0}]
        assert first["model"] == "gpt-4o-mini"
    finally:
        await engine.aclose()


async def test_a_read_stopped_half_way_holds_no_snapshot(sqlite_url: str) -> None:
    engine = await Engine.open(
        sqlite_url, settings=Settings(), providers=ProviderSet({"OPENAI_API_KEY": "test"})
    )
    try:
        batch_id = await engine.create_batch(_lines(30))
        (job,) = await engine.store.jobs_of(batch_id)
        reading = engine.store.job_requests(job.id, 10)
        assert len(await anext(reading)) == 10
        await reading.aclose()  # what `async for` does when its body returns early
        path = sqlite_path(sqlite_url)
        assert path is not None
        # A checkpoint that truncates the log cannot finish past a reader's snapshot.
        with sqlite3.connect(path) as conn:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        await engine.aclose()
