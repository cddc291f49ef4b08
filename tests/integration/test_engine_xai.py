"""The engine end to end against the xAI emulator over real HTTP, on SQLite and PostgreSQL,
beyond the provider contract suite: reasoning usage, xAI's own cancel, server errors,
refused models and fields, the native escape hatch, max age and adopting a lost create."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.support.emulated import (
    chat_lines,
    emulator_state,
    open_engine,
    provider_env,
)
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.emulators.xai import XAIEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.providers.registry import ProviderSet
from unibatch.types import BatchStatus, RequestStatus

MODEL = "xai/grok-4-fast-non-reasoning"


def xai(emu: RunningEmulator) -> XAIEmulator:
    found = emu.emulators["xai"]
    assert isinstance(found, XAIEmulator)
    return found


def lines(n: int, model: str = MODEL) -> list[dict[str, Any]]:
    return chat_lines(n, model=model)


async def test_reasoning_tokens_count_as_output(engine: Engine) -> None:
    batch_id = await engine.create_batch(lines(3, model="xai/grok-3-mini"))
    await engine.wait(batch_id, interval=0.05, timeout=60)
    result = [r async for r in engine.results(batch_id)][0]
    assert result.response is not None
    usage = result.response["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning > 0
    assert result.usage.reasoning_tokens == reasoning
    # OpenAI counts reasoning inside completion_tokens; xAI's batch wire does not.
    assert usage["completion_tokens"] == result.usage.output_tokens > reasoning
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_cancel_by_xai_fails_the_batch_and_keeps_results(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emu = xai(emulator)
    emu.config.in_progress_seconds = 20.0  # scaled: 1 s; xAI gives up halfway
    emu.cancel_by_xai_message = "Batch cancelled by xAI: capacity exhausted"
    batch_id = await engine.create_batch(lines(30))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.FAILED
    assert any("capacity exhausted" in e for e in batch.errors)
    assert counts.succeeded > 0 and counts.errored > 0
    assert counts.succeeded + counts.errored == 30
    failed = [r async for r in engine.results(batch_id) if r.status is RequestStatus.ERRORED]
    assert all(r.error is not None and r.error.code == "batch_failed" for r in failed)


async def test_server_errors_are_retried(engine: Engine, emulator: RunningEmulator) -> None:
    xai(emulator).inject_faults(3, status=503, retry_after=0.1)
    batch_id = await engine.create_batch(lines(10))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert len(emulator_state(emulator, "xai")["batches"]) == 1


async def test_unsupported_model_fails_the_job(engine: Engine, emulator: RunningEmulator) -> None:
    batch_id = await engine.create_batch(lines(4, model="xai/grok-2-image"))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.FAILED
    assert batch.request_counts.errored == 4
    assert any("not supported for batch processing" in e for e in batch.errors)
    assert emulator_state(emulator, "xai")["batches"] == []


async def test_unsupported_field_is_refused_before_sending(
    engine: Engine, emulator: RunningEmulator
) -> None:
    requests = lines(3)
    requests[2]["body"]["logit_bias"] = {"50256": -100}
    with pytest.raises(InputError, match=r"line 3: xai cannot honour body\.logit_bias"):
        await engine.create_batch(requests)
    assert emulator_state(emulator, "xai")["requests_seen"] == {}


async def test_native_escape_hatch_sends_the_body_unchanged(
    engine: Engine, emulator: RunningEmulator
) -> None:
    requests = lines(2)
    requests[0]["body"].update({"unibatch_native": True, "logit_bias": {"1": 2}})
    batch_id = await engine.create_batch(requests)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.request_counts.succeeded == 2
    (upload,) = xai(emulator).files.values()
    sent = [orjson.loads(line) for line in upload.path.read_bytes().splitlines()]
    assert sent[0]["body"]["logit_bias"] == {"1": 2}
    assert all("unibatch_native" not in line["body"] for line in sent)


async def test_max_age_cancels_and_finalizes_as_expired(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    xai(emulator).config.in_progress_seconds = 20_000.0  # scaled: 1000 s
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(lines(10), max_age=0.5)
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.status is BatchStatus.EXPIRED
        assert batch.request_counts.pending == 0
        assert batch.request_counts.expired > 0
        assert emulator_state(emulator, "xai")["batches"][0]["status"] == "cancelled"
    finally:
        await engine.aclose()


async def test_create_that_timed_out_is_adopted_not_repeated(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # The emulator records the batch, then holds its answer past the client's timeout: the
    # engine must find the batch by its name instead of creating a second one.
    xai(emulator).config.create_delay = 1.0
    providers = ProviderSet(provider_env(emulator), timeout=0.3)
    engine = await Engine.open(database_url, settings=fast_settings, providers=providers)
    try:
        batch_id = await engine.create_batch(lines(5))
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.status is BatchStatus.COMPLETED
        assert batch.request_counts.succeeded == 5
        assert len(emulator_state(emulator, "xai")["batches"]) == 1
        seen = emulator_state(emulator, "xai")["requests_seen"]
        assert seen["POST /batches"] == 1 and seen["GET /batches"] >= 1  # found, not redone
    finally:
        await engine.aclose()
