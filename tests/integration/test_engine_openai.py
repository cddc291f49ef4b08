"""The engine end to end against the OpenAI emulator over real HTTP, on SQLite and
PostgreSQL: success, partial failure, expiry, cancel, 429 storms, handlers, max age."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.emulated import chat_lines, drive_until_running, emulator_state, open_engine
from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.providers.base import ProviderJob, ResultRow
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.providers.openai.adapter import OpenAIProvider
from unibatch.store.tables import jobs, results
from unibatch.types import BatchStatus, RequestStatus


def openai_emulator(emu: object):  # type: ignore[no-untyped-def]
    return emu.emulators["openai"]  # type: ignore[attr-defined]


async def test_batch_completes_with_results_in_input_order(engine: Engine) -> None:
    batch_id = await engine.create_batch(chat_lines(60), metadata={"team": "evals"})
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.total == 60
    assert batch.request_counts.succeeded == 60
    assert batch.usage.input_tokens > 0 and batch.usage.output_tokens > 0
    assert batch.cost.total > 0
    assert batch.metadata == {"team": "evals"}
    got = [r async for r in engine.results(batch_id)]
    assert [r.custom_id for r in got] == [f"r-{i:05d}" for i in range(60)]
    first = got[0]
    assert first.status is RequestStatus.SUCCEEDED
    assert first.response is not None and first.response["object"] == "chat.completion"
    assert first.model == "gpt-4o-mini" and first.provider == "openai"
    line = first.as_openai(batch_id)
    assert line["response"]["status_code"] == 200
    assert line["response"]["body"]["choices"][0]["message"]["role"] == "assistant"
    assert line["error"] is None
    assert sum(r.cost.total for r in got) == pytest.approx(batch.cost.total)


async def test_partial_failure_keeps_every_row(engine: Engine, emulator: object) -> None:
    openai_emulator(emulator).config.failure_rate = 0.3
    batch_id = await engine.create_batch(chat_lines(80))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.COMPLETED
    assert counts.errored > 0 and counts.succeeded > 0
    assert counts.succeeded + counts.errored == 80
    errored = [r async for r in engine.results(batch_id) if r.status is RequestStatus.ERRORED]
    assert len(errored) == counts.errored
    assert all(r.error is not None and r.error.message for r in errored)


async def test_expired_batch_keeps_finished_results(engine: Engine, emulator: object) -> None:
    config = openai_emulator(emulator).config
    config.in_progress_seconds = 40.0
    config.completion_window_seconds = 20.0  # scaled: 1 s, mid in-progress
    batch_id = await engine.create_batch(chat_lines(40))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.EXPIRED
    assert counts.expired > 0
    assert counts.succeeded + counts.expired + counts.errored == 40
    statuses = {r.status async for r in engine.results(batch_id)}
    assert RequestStatus.EXPIRED in statuses


async def test_cancel_mid_flight(engine: Engine, emulator: object) -> None:
    openai_emulator(emulator).config.in_progress_seconds = 60.0  # scaled: 3 s
    batch_id = await engine.create_batch(chat_lines(30))
    await drive_until_running(engine, batch_id)
    await asyncio.sleep(0.5)
    batch = await engine.cancel(batch_id)
    assert batch.status is BatchStatus.CANCELLING
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.CANCELLED
    assert counts.cancelled > 0
    assert counts.succeeded + counts.cancelled + counts.errored == 30
    rows = [r async for r in engine.results(batch_id)]
    assert len(rows) == 30


async def test_cancel_before_submit_sends_nothing(engine: Engine, emulator: object) -> None:
    batch_id = await engine.create_batch(chat_lines(5))
    await engine.cancel(batch_id)
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.CANCELLED
    assert batch.request_counts.cancelled == 5
    assert emulator_state(emulator)["batches"] == []


async def test_429_storm_with_retry_after_never_fails(engine: Engine, emulator: object) -> None:
    emu = openai_emulator(emulator)
    batch_id = await engine.create_batch(chat_lines(20))
    emu.inject_faults(6, status=429, retry_after=0.2)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 20
    assert emu.faults.pending == 0
    assert len(emulator_state(emulator)["batches"]) == 1


async def test_server_errors_are_retried(engine: Engine, emulator: object) -> None:
    emu = openai_emulator(emulator)
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
    for _ in range(100):
        await engine.run_once()
        row = await engine.store.get_batch(batch_id)
        assert row is not None
        if row.handler_state == "done":
            break
        await asyncio.sleep(0.05)
    assert log.read_text().splitlines() == [f"{batch_id} completed 4"]
    assert (row.handler_state, row.handler_attempts) == ("done", 2)


async def test_max_age_cancels_and_finalizes(
    database_url: str, emulator: object, fast_settings: Settings
) -> None:
    openai_emulator(emulator).config.in_progress_seconds = 200.0  # scaled: 10 s
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
    database_url: str, emulator: object, fast_settings: Settings
) -> None:
    provider = DroppingProvider(OPENAI, "k", emulator.base_url("openai"))  # type: ignore[attr-defined]
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
    engine: Engine, emulator: object
) -> None:
    openai_emulator(emulator).config.max_requests_per_batch = 3
    batch_id = await engine.create_batch(chat_lines(5))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.FAILED
    assert batch.request_counts.errored == 5
    assert batch.errors
    first = [r async for r in engine.results(batch_id)][0]
    assert first.error is not None and first.error.code == "batch_failed"


async def test_duplicate_across_chunks_is_named_and_nothing_is_stored(
    database_url: str, emulator: object, fast_settings: Settings
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
