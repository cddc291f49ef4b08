"""The engine end to end against the OpenAI emulator over real HTTP, on SQLite and
PostgreSQL, for what the provider contract suite does not cover: cancel before submit,
server errors, completion handlers, max age, lost rows, re-ingest, rejection, duplicates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines, emulator_state, open_engine
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.engine.notify import HANDLER_BACKOFF
from unibatch.errors import InputError
from unibatch.providers.base import ProviderJob, ResultRow
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.providers.openai.adapter import OpenAIProvider
from unibatch.store.tables import jobs, results
from unibatch.types import BatchStatus, RequestStatus


async def test_cancel_before_submit_sends_nothing(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await engine.create_batch(chat_lines(5))
    await engine.cancel(batch_id)
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.CANCELLED
    assert batch.request_counts.cancelled == 5
    assert emulator_state(emulator)["batches"] == []


async def test_server_errors_are_retried(engine: Engine, emulator: RunningEmulator) -> None:
    emu = emulator.openai
    emu.inject_faults(3, status=500)
    batch_id = await engine.create_batch(chat_lines(10))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert len(emulator_state(emulator)["batches"]) == 1


async def test_handler_called_once_after_results(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "handler.log"
    monkeypatch.setenv("UNIBATCH_TEST_HANDLER_LOG", str(log))
    batch_id = await engine.create_batch(
        chat_lines(10), on_complete="tests.support.handlers:record"
    )
    await engine.wait(batch_id, interval=0.05, timeout=60)
    for _ in range(5):
        await engine.run_once()
    assert log.read_text().splitlines() == [f"{batch_id} completed 10"]


async def test_failing_handler_is_retried_not_lost(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ShiftedClock()
    engine.ctx.clock = clock
    log = tmp_path / "handler.log"
    monkeypatch.setenv("UNIBATCH_TEST_HANDLER_LOG", str(log))
    batch_id = await engine.create_batch(
        chat_lines(4), on_complete="tests.support.handlers:fail_first"
    )
    await engine.wait(batch_id, interval=0.05, timeout=60)
    row = await engine.store.get_batch(batch_id)
    assert row is not None
    # `wait` returns after the first (failed) attempt; the retry is the workers' job.
    assert (row.handler_state, row.handler_attempts) == ("pending", 1)
    assert "handler failure on purpose" in row.handler_error
    assert not log.exists()
    clock.advance(HANDLER_BACKOFF[0])  # the retry is due after its backoff
    await engine.run_once()
    row = await engine.store.get_batch(batch_id)
    assert row is not None
    assert log.read_text().splitlines() == [f"{batch_id} completed 4"]
    assert (row.handler_state, row.handler_attempts) == ("done", 2)


async def test_max_age_cancels_and_finalizes(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    emulator.openai.config.in_progress_seconds = 20_000.0  # scaled: 1000 s
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(chat_lines(10), max_age=0.5)
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.status is BatchStatus.EXPIRED
        assert batch.request_counts.pending == 0
        assert emulator_state(emulator)["batches"][0]["status"] == "cancelled"
    finally:
        await engine.aclose()


class DroppingProvider(OpenAIProvider):
    """Loses one result row, as a provider that forgets a request would."""

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        async for rows in super().results(job):
            yield [row for row in rows if row.custom_id != "r-00002"]


async def test_request_missing_from_results_is_errored(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    provider = DroppingProvider(OPENAI, "k", emulator.base_url("openai"))
    engine = await open_engine(database_url, emulator, fast_settings, {"openai": provider})
    try:
        batch_id = await engine.create_batch(chat_lines(5))
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.request_counts.succeeded == 4
        assert batch.request_counts.errored == 1
        missing = [r async for r in engine.results(batch_id) if r.custom_id == "r-00002"][0]
        assert missing.status is RequestStatus.ERRORED
        assert missing.error is not None and missing.error.code == "missing_result"
        assert "no result" in missing.error.message
        # The provider forgot it; the request itself may well succeed when sent again.
        assert missing.as_unified()["error"]["retryable"] is True
    finally:
        await engine.aclose()


async def test_ingesting_the_same_files_twice_changes_nothing(engine: Engine) -> None:
    batch_id = await engine.create_batch(chat_lines(25))
    before = await engine.wait(batch_id, interval=0.05, timeout=60)
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            jobs.update()
            .where(jobs.c.batch_id == batch_id)
            .values(phase="ingesting", next_run_at=0.0)
        )
    while await engine.run_once(batch_id=batch_id):
        pass
    async with engine.store.engine.connect() as conn:
        count = (
            await conn.execute(
                sa.select(sa.func.count())
                .select_from(results)
                .where(results.c.batch_id == batch_id)
            )
        ).scalar()
    assert count == 25
    after = await engine.get_batch(batch_id)
    assert after.request_counts == before.request_counts
    assert after.cost == before.cost


async def test_provider_rejection_fails_the_job_not_the_worker(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.max_requests_per_batch = 3
    batch_id = await engine.create_batch(chat_lines(5))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.FAILED
    assert batch.request_counts.errored == 5
    assert batch.errors
    first = [r async for r in engine.results(batch_id)][0]
    assert first.error is not None and first.error.code == "batch_failed"


async def test_duplicate_across_chunks_is_named_and_nothing_is_stored(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    settings = fast_settings.model_copy(update={"ingest_chunk": 2})
    engine = await open_engine(database_url, emulator, settings)
    try:
        lines = chat_lines(6)
        lines[4]["custom_id"] = lines[1]["custom_id"]
        with pytest.raises(InputError, match=r"line 5: duplicate custom_id 'r-00001'"):
            await engine.create_batch(lines)
        assert await engine.list_batches() == []
        assert await engine.create_batch(chat_lines(3))  # the store is still usable
    finally:
        await engine.aclose()


async def test_duplicate_inside_a_many_row_insert_is_named(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # Chunks of 300: SQLite writes them 128 rows to a statement (then the rest one by
    # one); the repeat sits in the second chunk's second statement.
    settings = fast_settings.model_copy(update={"ingest_chunk": 300})
    engine = await open_engine(database_url, emulator, settings)
    try:
        lines = chat_lines(600)
        lines[300 + 200]["custom_id"] = lines[7]["custom_id"]
        with pytest.raises(InputError, match=r"line 501: duplicate custom_id 'r-00007'"):
            await engine.create_batch(lines)
        assert await engine.list_batches() == []
        batch_id = await engine.create_batch(chat_lines(300))
        (job,) = await engine.store.jobs_of(batch_id)
        (stored,) = [chunk async for chunk in engine.store.job_requests(job.id, 1000)]
        assert [(seq, custom_id) for seq, custom_id, _ in stored] == [
            (i, f"r-{i:05d}") for i in range(300)
        ]
    finally:
        await engine.aclose()
