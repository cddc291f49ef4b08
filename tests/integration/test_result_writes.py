"""`Store.insert_results` on SQLite and PostgreSQL: a chunk written again after a crash
stores only what is new, a row repeated within a chunk is stored once, the result hooks
see each committed chunk once, and a lost lease writes nothing. On PostgreSQL a chunk is
first COPYed straight into the table and, if any of its rows is already stored, written
again through a staging table; both ways must leave the same rows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from unibatch.codec import ResultRecord
from unibatch.config import Settings
from unibatch.decode.records import records
from unibatch.engine import Engine
from unibatch.pricing import Rates
from unibatch.providers.base import ResultRow
from unibatch.providers.registry import ProviderSet
from unibatch.store.tables import jobs, results
from unibatch.types import ErrorInfo, RequestStatus, Usage

RATES = Rates(input=1e-7, cached_input=5e-8, output=4e-7)
N = 40


def _row(i: int) -> ResultRow:
    """Every fourth row errored (the full record form), the others plain successes (the
    short form)."""
    if i % 4 == 3:
        return ResultRow(
            custom_id=f"r{i}",
            status=RequestStatus.ERRORED,
            status_code=400,
            body={"error": {"message": f"bad {i}"}},
            error=ErrorInfo("invalid_request_error", f"bad {i}"),
        )
    return ResultRow(
        custom_id=f"r{i}",
        status=RequestStatus.SUCCEEDED,
        status_code=200,
        body={"choices": [{"message": {"content": f"answer {i}"}}]},
        usage=Usage(input_tokens=10 + i, output_tokens=i),
        row_id=f"row-{i}",
    )


@pytest.fixture
async def job(database_url: str) -> AsyncIterator[tuple[Engine, str, str]]:
    """A batch of N requests in one job leased to `test`, nothing stored yet."""
    engine = await Engine.open(
        database_url, settings=Settings(), providers=ProviderSet({"OPENAI_API_KEY": "test"})
    )
    lines = [
        {
            "custom_id": f"r{i}",
            "body": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        }
        for i in range(N)
    ]
    batch_id = await engine.create_batch(lines)
    (only,) = await engine.store.jobs_of(batch_id)
    async with engine.store.engine.begin() as conn:
        await conn.execute(jobs.update().values(lease_owner="test", lease_until=1e12))
    yield engine, batch_id, only.id
    await engine.aclose()


def _records(batch_id: str, job_id: str, indexes: list[int], now: float) -> list[ResultRecord]:
    built, unresolved = records(batch_id, job_id, RATES, [_row(i) for i in indexes], now)
    assert not unresolved
    return built


async def _stored(engine: Engine, batch_id: str) -> dict[str, tuple[object, ...]]:
    async with engine.store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(
                results.c.custom_id,
                results.c.status,
                results.c.input_tokens,
                results.c.error_code,
                results.c.retryable,
                results.c.created_at,
            ).where(results.c.batch_id == batch_id)
        )
        return {row[0]: tuple(row[1:]) for row in rows}


async def test_a_chunk_written_again_stores_only_what_is_new(
    job: tuple[Engine, str, str],
) -> None:
    engine, batch_id, job_id = job
    seen: list[int] = []

    async def hook(conn: AsyncConnection, hooked_batch: str, rows: list[ResultRecord]) -> None:
        assert hooked_batch == batch_id
        seen.append(len(rows))

    engine.store.add_result_hook(hook)
    store = engine.store
    # Before a crash: the first half, written at t=1.
    first = _records(batch_id, job_id, list(range(N // 2)), now=1.0)
    assert await store.insert_results(first, job_id=job_id, owner="test", lease_until=1e12)
    # After it: every row again (a re-run reads the files from the start), at t=2.
    again = _records(batch_id, job_id, list(range(N)), now=2.0)
    assert await store.insert_results(again, job_id=job_id, owner="test", lease_until=1e12)

    stored = await _stored(engine, batch_id)
    assert sorted(stored) == sorted(f"r{i}" for i in range(N))
    # Rows already stored are kept as they were; the new ones are written.
    assert {cid for cid, row in stored.items() if row[-1] == 1.0} == {
        f"r{i}" for i in range(N // 2)
    }
    assert stored["r3"][:4] == ("errored", 0, "invalid_request_error", False)
    assert stored["r25"][:4] == ("succeeded", 35, None, False)
    assert seen == [N // 2, N]  # once per committed chunk, never for a rolled-back try


async def test_a_row_repeated_within_a_chunk_is_stored_once(
    job: tuple[Engine, str, str],
) -> None:
    engine, batch_id, job_id = job
    chunk = _records(batch_id, job_id, [0, 1, 2, 1, 3, 3], now=1.0)
    assert await engine.store.insert_results(chunk, job_id=job_id, owner="test", lease_until=1e12)
    assert sorted(await _stored(engine, batch_id)) == ["r0", "r1", "r2", "r3"]


async def test_a_lost_lease_writes_nothing(job: tuple[Engine, str, str]) -> None:
    engine, batch_id, job_id = job
    chunk = _records(batch_id, job_id, list(range(N)), now=1.0)
    written = await engine.store.insert_results(
        chunk, job_id=job_id, owner="someone-else", lease_until=1e12
    )
    assert written is False
    assert await _stored(engine, batch_id) == {}
