"""The engine end to end against the Gemini emulator over real HTTP, on SQLite and
PostgreSQL: inline and file input, partial failure, expiry, cancel, 429 storms, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.emulated import (
    chat_lines,
    drive_until_running,
    emulator_state,
    open_engine,
    provider_env,
)
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.emulators.gemini import GeminiEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.providers.gemini import SPEC as GEMINI
from unibatch.providers.gemini.adapter import GeminiProvider
from unibatch.store.tables import jobs
from unibatch.types import BatchStatus, RequestStatus

MODEL = "gemini/gemini-2.5-flash"
CHAT = "/v1/chat/completions"


def gemini(emu: RunningEmulator) -> GeminiEmulator:
    emulator = emu.emulators["gemini"]
    assert isinstance(emulator, GeminiEmulator)
    return emulator


def lines(n: int, **extra: Any) -> list[dict[str, Any]]:
    out = chat_lines(n, model=MODEL)
    for line in out:
        line["body"].update(extra)
    return out


async def test_inline_batch_completes_with_translated_results(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await engine.create_batch(lines(40, temperature=0.2))
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 40
    assert batch.usage.input_tokens > 0 and batch.usage.output_tokens > 0
    got = [r async for r in engine.results(batch_id)]
    assert [r.custom_id for r in got] == [f"r-{i:05d}" for i in range(40)]
    first = got[0]
    assert first.provider == "gemini" and first.model == "gemini-2.5-flash"
    assert first.response is not None
    assert first.response["object"] == "chat.completion"
    assert first.response["choices"][0]["message"]["content"].startswith("Echo: ")
    assert first.response["choices"][0]["finish_reason"] == "stop"
    assert first.raw is not None and first.raw["metadata"] == {"key": "ubseq-0"}
    seen = emulator_state(emulator, "gemini")
    assert [b["inline"] for b in seen["batches"]] == [True]
    assert seen["batches"][0]["display_name"].startswith("ubj_")
    assert seen["requests_seen"].get("POST /upload/v1beta/files") is None


async def test_large_batch_goes_through_the_files_api(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    env = provider_env(emulator)
    provider = GeminiProvider(
        GEMINI, "test-key", env["GEMINI_BASE_URL"], api_version="v1", inline_limit=2_000
    )
    engine = await open_engine(database_url, emulator, fast_settings, {"gemini": provider})
    try:
        batch_id = await engine.create_batch(lines(30, max_tokens=2))
        batch = await engine.wait(batch_id, interval=0.05, timeout=30)
        assert batch.status is BatchStatus.COMPLETED
        assert batch.request_counts.succeeded == 30
        got = [r async for r in engine.results(batch_id)]
        assert got[5].custom_id == "r-00005"
        assert got[5].response is not None
        assert got[5].response["choices"][0]["finish_reason"] == "length"
        seen = emulator_state(emulator, "gemini")
        assert [b["inline"] for b in seen["batches"]] == [False]
        assert seen["requests_seen"]["POST /upload/v1/files"] == 2  # start, then finalize
        assert seen["requests_seen"]["GET /v1/files/{fid}:download"] == 1
    finally:
        await engine.aclose()


async def test_partial_failure_keeps_every_row(engine: Engine, emulator: RunningEmulator) -> None:
    gemini(emulator).config.failure_rate = 0.3
    batch_id = await engine.create_batch(lines(60))
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    counts = batch.request_counts
    assert batch.status is BatchStatus.COMPLETED
    assert counts.errored > 0 and counts.succeeded > 0
    assert counts.succeeded + counts.errored == 60
    errored = [r async for r in engine.results(batch_id) if r.status is RequestStatus.ERRORED]
    assert len(errored) == counts.errored
    assert all(r.error is not None and r.error.message for r in errored)
    assert {r.error.retryable for r in errored if r.error} == {True, False}


async def test_expired_batch_reports_every_request_expired(
    engine: Engine, emulator: RunningEmulator
) -> None:
    config = gemini(emulator).config
    config.in_progress_seconds = 40.0
    config.completion_window_seconds = 10.0  # expires at twice that, scaled: 1 s
    batch_id = await engine.create_batch(lines(20))
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.EXPIRED
    assert batch.request_counts.expired == 20  # Gemini keeps no results of an expired batch
    assert {r.status async for r in engine.results(batch_id)} == {RequestStatus.EXPIRED}


async def test_cancel_mid_flight_keeps_finished_results(
    engine: Engine, emulator: RunningEmulator
) -> None:
    gemini(emulator).config.in_progress_seconds = 60.0  # scaled: 3 s
    batch_id = await engine.create_batch(lines(30))
    await drive_until_running(engine, batch_id)
    await asyncio.sleep(0.8)
    batch = await engine.cancel(batch_id)
    assert batch.status is BatchStatus.CANCELLING
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    counts = batch.request_counts
    assert batch.status is BatchStatus.CANCELLED
    assert counts.cancelled > 0 and counts.succeeded > 0
    assert counts.succeeded + counts.cancelled + counts.errored == 30
    assert emulator_state(emulator, "gemini")["batches"][0]["status"] == "BATCH_STATE_CANCELLED"


async def test_429_storm_with_retry_info_never_fails(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emu = gemini(emulator)
    batch_id = await engine.create_batch(lines(20))
    emu.inject_faults(6, status=429, retry_after=0.2)
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 20
    assert emu.faults.pending == 0
    assert len(emulator_state(emulator, "gemini")["batches"]) == 1


async def test_recovery_adopts_the_batch_created_before_a_crash(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await engine.create_batch(lines(5))
    job = (await engine.store.jobs_of(batch_id))[0]

    async def requests() -> AsyncIterator[RequestLine]:
        for i, line in enumerate(lines(5)):
            yield RequestLine(line["custom_id"], line["body"], seq=i)

    # A create whose answer the engine never heard: the job still says `submitting`.
    spec = JobSpec(job.id, "gemini-2.5-flash", CHAT, job.id, 5, 0)
    await engine.providers.get("gemini").submit(spec, requests())
    async with engine.store.engine.begin() as conn:
        await conn.execute(jobs.update().where(jobs.c.id == job.id).values(phase="submitting"))
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 5
    assert len(emulator_state(emulator, "gemini")["batches"]) == 1


async def test_unsupported_field_is_refused_before_anything_is_sent(
    engine: Engine, emulator: RunningEmulator
) -> None:
    with pytest.raises(InputError, match=r"line 1: gemini cannot honour body\.logit_bias"):
        await engine.create_batch(lines(3, logit_bias={"1": 5}))
    assert emulator_state(emulator, "gemini")["batches"] == []


async def test_embeddings_batch(engine: Engine, emulator: RunningEmulator) -> None:
    requests = [
        {
            "custom_id": f"e-{i}",
            "url": "/v1/embeddings",
            "body": {"model": "gemini/gemini-embedding-001", "input": f"text {i}", "dimensions": 4},
        }
        for i in range(6)
    ]
    batch_id = await engine.create_batch(requests)
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 6
    got = [r async for r in engine.results(batch_id)]
    assert got[0].response is not None
    assert len(got[0].response["data"][0]["embedding"]) == 4
    assert (
        emulator_state(emulator, "gemini")["requests_seen"][
            "POST /v1beta/models/{model}:asyncBatchEmbedContent"
        ]
        == 1
    )
