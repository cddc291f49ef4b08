"""The engine end to end against the Anthropic emulator over real HTTP, on SQLite and
PostgreSQL, beyond the provider contract suite: structured output and tools, refused
fields, overload errors, max age, and batches whose create answer was lost."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines, emulator_state, open_engine
from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.emulators.anthropic import AnthropicEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.providers.anthropic import SPEC as ANTHROPIC
from unibatch.providers.anthropic.adapter import AnthropicProvider
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.types import BatchStatus

MODEL = "anthropic/claude-haiku-4-5"


def anthropic_emulator(emu: RunningEmulator) -> AnthropicEmulator:
    found = emu.emulators["anthropic"]
    assert isinstance(found, AnthropicEmulator)
    return found


def lines(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return chat_lines(n, model=MODEL, prefix=prefix)


async def test_structured_output_and_tool_calls_round_trip(engine: Engine) -> None:
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    ask = [{"role": "user", "content": "classify"}]
    structured = {
        "model": MODEL,
        "messages": ask,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
    }
    tool = {"type": "function", "function": {"name": "label", "parameters": schema}}
    calling = {"model": MODEL, "messages": ask, "tools": [tool], "tool_choice": "required"}
    batch_id = await engine.create_batch(
        [{"custom_id": "s", "body": structured}, {"custom_id": "t", "body": calling}]
    )
    await engine.wait(batch_id, interval=0.05, timeout=30)
    s, t = [r.response["choices"][0] async for r in engine.results(batch_id) if r.response]
    assert s["finish_reason"] == "stop"
    assert json.loads(s["message"]["content"]) == {"label": "emulated label"}
    assert t["finish_reason"] == "tool_calls" and t["message"]["content"] is None
    (call,) = t["message"]["tool_calls"]
    assert call["type"] == "function" and call["function"]["name"] == "label"
    assert json.loads(call["function"]["arguments"]) == {"label": "emulated label"}


async def test_cache_writes_are_counted_and_priced_at_the_cache_write_rate(
    engine: Engine,
) -> None:
    def cached(ttl: str | None) -> list[dict[str, Any]]:
        control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
        text = {"type": "text", "text": "a long shared prefix " * 40, "cache_control": control}
        return [{"role": "user", "content": [text]}]

    requests = [
        {"custom_id": "five", "body": {"model": MODEL, "messages": cached(None)}},
        {"custom_id": "hour", "body": {"model": MODEL, "messages": cached("1h")}},
        {
            "custom_id": "none",
            "body": {"model": MODEL, "messages": [{"role": "user", "content": "x"}]},
        },
    ]
    batch_id = await engine.create_batch(requests)
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    results = {r.custom_id: r async for r in engine.results(batch_id)}
    five, hour, plain = results["five"].usage, results["hour"].usage, results["none"].usage
    assert five.cache_write_tokens > 0 and plain.cache_write_tokens == 0
    assert hour.cache_write_tokens == five.cache_write_tokens
    # The batch totals add them up, once the batch has ended (stored at finalize).
    assert batch.usage.cache_write_tokens == 2 * five.cache_write_tokens
    # Haiku 4.5 per million tokens: $1 input, $0.10 read, $1.25 and $2 written; half price.
    fresh = five.input_tokens - five.cached_tokens - five.cache_write_tokens
    base = fresh * 1.0 + five.cached_tokens * 0.1
    assert results["five"].cost.input == pytest.approx(
        (base + five.cache_write_tokens * 1.25) * 0.5 / 1e6
    )
    assert results["hour"].cost.input == pytest.approx(
        (base + hour.cache_write_tokens * 2.0) * 0.5 / 1e6
    )


async def test_unsupported_field_is_refused_before_sending(
    engine: Engine, emulator: RunningEmulator
) -> None:
    bad = lines(2)
    bad[1]["body"]["seed"] = 7
    with pytest.raises(InputError, match=r"line 2: anthropic cannot honour body\.seed"):
        await engine.create_batch(bad)
    assert emulator_state(emulator, "anthropic")["batches"] == []


async def test_overloaded_and_server_errors_are_retried(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emu = anthropic_emulator(emulator)
    emu.inject_faults(2, status=529, retry_after=0.1)
    emu.inject_faults(2, status=500)
    batch_id = await engine.create_batch(lines(10))
    batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 10


async def test_max_age_cancels_and_reports_expired(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    anthropic_emulator(emulator).config.in_progress_seconds = 20_000.0  # scaled: 1000 s
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(lines(10), max_age=0.5, max_attempts=1)
        batch = await engine.wait(batch_id, interval=0.05, timeout=30)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.EXPIRED
    assert batch.request_counts.pending == 0
    (seen,) = emulator_state(emulator, "anthropic")["batches"]
    assert seen["status"] == "ended" and seen["cancel_initiated_at"] is not None


async def test_lost_create_response_adopts_the_batch(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # The create reaches Anthropic but its answer is lost: the next attempt finds the batch
    # by its request count, and its results (carrying the job's id) prove it is ours.
    emu = anthropic_emulator(emulator)
    provider = AnthropicProvider(ANTHROPIC, "k", emulator.base_url("anthropic"), timeout=0.3)
    engine = await open_engine(database_url, emulator, fast_settings, {"anthropic": provider})
    try:
        emu.config.create_delay = 1.0
        batch_id = await engine.create_batch(lines(5))
        await engine.run_once(batch_id=batch_id)  # the create times out after reaching it

        async def recorded() -> bool:
            return bool(emu.batches)

        # On a busy machine the client may give up before the emulator has stored it.
        await until(recorded, "Anthropic to record the create")
        (orphan,) = emu.batches
        emu.config.create_delay = 0.0
        batch = await engine.wait(batch_id, interval=0.05, timeout=30)
        (job,) = await engine.store.jobs_of(batch_id)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 5
    assert list(emu.batches) == [orphan]  # adopted, not sent twice
    assert job.provider_batch_id == orphan


async def test_find_adopts_the_oldest_batch_of_the_job_size_in_the_window(
    emulator: RunningEmulator, emulator_clock: ShiftedClock, caplog: pytest.LogCaptureFixture
) -> None:
    provider = AnthropicProvider(ANTHROPIC, "k", emulator.base_url("anthropic"))
    spec = JobSpec("ubj_x", "claude-haiku-4-5", "/v1/chat/completions", "ubj_x", 1, 100)
    try:
        old = await provider.submit(spec, _one_line())
        emulator_clock.advance(1.0)
        since = emulator_clock()
        recent = [(await provider.submit(spec, _one_line())).id for _ in range(2)]
        assert old.status is BatchStatus.IN_PROGRESS and old.total == 1
        found = await provider.find("ubj_x", since=since, request_count=1)
        assert found is not None and found.id == recent[0] and found.tag == "ubj_x"
        assert await provider.find("ubj_x", since=since, request_count=2) is None
        assert await provider.find("ubj_x", since=since) is None  # size unknown: no guess
    finally:
        await provider.aclose()
    (warning,) = [r.getMessage() for r in caplog.records if "adopting" in r.getMessage()]
    assert recent[1] in warning and old.id not in warning


async def _one_line() -> AsyncIterator[RequestLine]:
    body = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]}
    yield RequestLine("only", body, seq=0)


async def test_results_of_a_deleted_batch_are_empty_not_an_error(
    emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    provider = AnthropicProvider(ANTHROPIC, "k", emulator.base_url("anthropic"))
    try:
        spec = JobSpec("ubj_y", "claude-haiku-4-5", "/v1/chat/completions", "ubj_y", 1, 100)
        job = await provider.submit(spec, _one_line())
        emulator_clock.advance(3600.0)  # long past the end of processing
        job = await provider.get(job)
        assert job.status.terminal
        assert [r.custom_id async for rows in provider.results(job) for r in rows] == ["only"]
        url = f"{emulator.base_url('anthropic')}/v1/messages/batches/{job.id}"
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        async with httpx.AsyncClient() as client:
            (await client.delete(url, headers=headers)).raise_for_status()
        assert [rows async for rows in provider.results(job)] == []
    finally:
        await provider.aclose()
