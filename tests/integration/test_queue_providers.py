"""Queue limits of Anthropic (requests waiting in the processing queue) and Gemini
(concurrent batch jobs): their emulators refuse a create past a limit with a 429, and the
scheduler meters work so that they never have to, or learns the limit from the refusal."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.emulated import chat_lines, emulator_state, open_engine
from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.types import BatchStatus

ANTHROPIC = "anthropic/claude-haiku-4-5"
GEMINI = "gemini/gemini-2.5-flash"
QUEUED = 20
# Batches stay in the queue long enough (about a second) for jobs to overlap there.
HELD = {"max_queued_requests": QUEUED, "in_progress_seconds": 20.0}


def _settings(fast_settings: Settings, **limits: int) -> Settings:
    return fast_settings.model_copy(update={"queue_limits": limits})


@pytest.mark.parametrize("emulator", [HELD], indirect=True)
async def test_anthropic_queue_five_times_over_is_metered(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    settings = _settings(fast_settings, **{"anthropic.queued_requests": QUEUED})
    engine = await open_engine(database_url, emulator, settings)
    try:
        # Planned as one job of 100 requests: split to fit the queue when it is sent.
        batch_id = await engine.create_batch(chat_lines(5 * QUEUED, model=ANTHROPIC))
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 5 * QUEUED
    queue = emulator_state(emulator, "anthropic")["queue"]
    assert 0 < queue["peak_queued_requests"] <= QUEUED
    assert queue["refused"] == {}


@pytest.mark.parametrize("emulator", [HELD], indirect=True)
async def test_anthropic_refusal_lowers_a_too_high_limit(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    too_high = 5 * QUEUED
    settings = _settings(fast_settings, **{"anthropic.queued_requests": too_high})
    engine = await open_engine(sqlite_url, emulator, settings)
    try:
        batch_id = await engine.create_batch(chat_lines(5 * QUEUED, model=ANTHROPIC))
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
        learned = (await engine.store.learned_limits())["anthropic"][("", "queued_requests")]
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 5 * QUEUED
    assert learned["learned"] <= QUEUED and learned["configured"] == too_high
    queue = emulator_state(emulator, "anthropic")["queue"]
    assert 1 <= queue["refused"]["queued_requests"] <= 3
    assert queue["peak_queued_requests"] <= QUEUED


@pytest.mark.parametrize(
    "emulator", [{"max_concurrent_batches": 2, "in_progress_seconds": 20.0}], indirect=True
)
async def test_gemini_concurrent_batches_are_metered(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    settings = _settings(fast_settings, **{"gemini.concurrent_batches": 2})
    engine = await open_engine(sqlite_url, emulator, settings)
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    try:
        batch_ids = [
            await engine.create_batch(chat_lines(3, model=GEMINI, prefix=f"b{n}")) for n in range(6)
        ]
        # One worker drives them all at once, as many as the queue takes.
        worker = asyncio.create_task(engine.run_worker(stop))

        async def all_done() -> bool:
            return all(b.status.terminal for b in await engine.get_batches(batch_ids))

        await until(all_done, "every batch to end", timeout=120)
        batches = await engine.get_batches(batch_ids)
    finally:
        stop.set()
        if worker is not None:
            await asyncio.wait({worker}, timeout=30)
        await engine.aclose()
    assert all(b.status is BatchStatus.COMPLETED for b in batches)
    queue = emulator_state(emulator, "gemini")["queue"]
    assert queue["peak_concurrent_batches"] == 2
    assert queue["refused"] == {}
