"""The engine end to end against the Gemini emulator over real HTTP, on SQLite and
PostgreSQL, beyond the provider contract suite: input through the Files API, recovery,
refused fields and embeddings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.emulated import (
    chat_lines,
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
from unibatch.types import BatchStatus

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
