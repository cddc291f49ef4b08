"""`store.lite.Reader` (the standard library's sqlite3, for `unibatch status`, `list`
and `results`) reads the records the store's own operations read, and declines what only
`open_store` may open."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from unibatch.config import Settings
from unibatch.decode.records import records
from unibatch.engine import Engine
from unibatch.engine.views import batch_view, list_views, view
from unibatch.pricing import Rates
from unibatch.providers.base import ResultRow
from unibatch.providers.registry import ProviderSet
from unibatch.store.lite import Reader, sqlite_path
from unibatch.store.tables import batches, jobs
from unibatch.types import ErrorInfo, RequestStatus, Usage

RATES = Rates(input=1e-7, cached_input=5e-8, output=4e-7)


@pytest.fixture
async def engine(sqlite_url: str) -> AsyncIterator[Engine]:
    engine = await Engine.open(
        sqlite_url,
        settings=Settings(),
        providers=ProviderSet({"OPENAI_API_KEY": "test", "ANTHROPIC_API_KEY": "test"}),
    )
    yield engine
    await engine.aclose()


def _lines(n: int, model: str) -> list[dict[str, object]]:
    return [
        {
            "custom_id": f"{model}-{i}",
            "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(n)
    ]


async def _same_as_the_store(engine: Engine, url: str, batch_id: str) -> None:
    store = engine.store
    reader = Reader.open(url)
    assert reader is not None
    try:
        state = reader.batch_state(batch_id)
    finally:
        reader.close()
    assert state is not None
    batch, job_records, progress = state
    assert batch == await store.get_batch(batch_id)
    assert job_records == await store.jobs_of(batch_id)
    if not batch.status.terminal:
        assert sorted(progress, key=str) == sorted(await store.progress(batch_id), key=str)
    assert view(*state) == await batch_view(store, batch_id)


async def test_reads_what_the_store_reads(engine: Engine, sqlite_url: str) -> None:
    batch_id = await engine.create_batch(
        _lines(3, "openai/gpt-4o-mini") + _lines(2, "anthropic/claude-haiku-4-5"),
        metadata={"team": "a"},
    )
    await _same_as_the_store(engine, sqlite_url, batch_id)
    # Results landed for one job: the view adds them up while the batch runs.
    job = (await engine.store.jobs_of(batch_id))[0]
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            jobs.update()
            .where(jobs.c.id == job.id)
            .values(
                lease_owner="t",
                lease_until=1e12,
                phase="running",
                status="in_progress",
                errors=["a provider error"],
            )
        )
    (first,) = [line["custom_id"] for line in _lines(1, f"{job.provider}/{job.model}")]
    rows = [
        ResultRow(
            custom_id=first,
            status=RequestStatus.SUCCEEDED,
            status_code=200,
            body={"ok": 1},
            usage=Usage(input_tokens=10, output_tokens=3, cached_tokens=2),
        ),
        ResultRow(
            custom_id=first[:-1] + "1",
            status=RequestStatus.ERRORED,
            error=ErrorInfo("server_error", "boom", retryable=True),
        ),
    ]
    built, _ = records(batch_id, job.id, RATES, rows, now=1.0)
    assert await engine.store.insert_results(built, job_id=job.id, owner="t", lease_until=1e12)
    await _same_as_the_store(engine, sqlite_url, batch_id)
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            batches.update()
            .where(batches.c.id == batch_id)
            .values(status="completed", succeeded=1, errored=1, cancel_requested=True)
        )
    await _same_as_the_store(engine, sqlite_url, batch_id)


async def test_no_such_batch_and_batches_being_imported(engine: Engine, sqlite_url: str) -> None:
    batch_id = await engine.create_batch(_lines(1, "openai/gpt-4o-mini"))
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            batches.update().where(batches.c.id == batch_id).values(status="validating")
        )
    reader = Reader.open(sqlite_url)
    assert reader is not None
    assert reader.batch_state(batch_id) is None
    assert reader.batch_state("ubb_nope") is None
    reader.close()


async def test_declines_what_open_store_must_open(
    engine: Engine, sqlite_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.db"
    assert Reader.open(f"sqlite:///{missing}") is None
    assert not missing.exists()  # not created: `open_store` creates and migrates
    assert Reader.open("postgresql://u@h/db") is None
    assert Reader.open("sqlite://") is None
    assert Reader.open("sqlite:///:memory:") is None
    assert Reader.open(sqlite_url + "?timeout=5") is None
    assert sqlite_path(sqlite_url) == sqlite_url.removeprefix("sqlite:///")
    # An older schema: Alembic has to upgrade it first.
    path = sqlite_path(sqlite_url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    assert Reader.open(sqlite_url) is None


async def test_lists_what_the_store_lists(engine: Engine, sqlite_url: str) -> None:
    made = [await engine.create_batch(_lines(2, "openai/gpt-4o-mini")) for _ in range(4)]
    # One ended, one being imported (hidden), the rest pending; two share a creation time,
    # which the id orders.
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            batches.update().where(batches.c.id == made[0]).values(status="completed")
        )
        await conn.execute(
            batches.update().where(batches.c.id == made[1]).values(status="validating")
        )
        await conn.execute(
            batches.update().where(batches.c.id.in_(made[2:])).values(created_at=5.0)
        )
    reader = Reader.open(sqlite_url)
    assert reader is not None
    try:
        for status, limit in ((None, 50), (None, 2), ("pending", 50), ("completed", 1)):
            listed = [view(*s) for s in reader.list_states(status=status, limit=limit)]
            assert listed == await list_views(engine.store, status=status, limit=limit)
        newest = [state[0].id for state in reader.list_states(status=None, limit=9)]
        assert newest == [made[0], max(made[2:]), min(made[2:])]
    finally:
        reader.close()
