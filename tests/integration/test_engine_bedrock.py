"""The engine end to end against the Bedrock emulator and moto's S3, on SQLite and
PostgreSQL, beyond the provider contract suite: the minimum record count, the settings
it needs, what batch inference refuses, and adopting a create whose answer was lost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.emulated import chat_lines, emulator_state, provider_env
from unibatch.config import Settings
from unibatch.emulators import BedrockEmulator, RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import ConfigurationError, InputError, LimitError
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.providers.bedrock.adapter import BedrockProvider
from unibatch.providers.registry import ProviderSet, spec_of
from unibatch.types import Batch, BatchStatus

HAIKU = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
MODEL = f"bedrock/{HAIKU}"


def bedrock(emu: RunningEmulator) -> BedrockEmulator:
    found = emu.emulators["bedrock"]
    assert isinstance(found, BedrockEmulator)
    return found


async def open_with(
    database_url: str, env: dict[str, str], settings: Settings, timeout: float = 60.0
) -> Engine:
    providers = ProviderSet(env, timeout=timeout)
    return await Engine.open(database_url, settings=settings, providers=providers)


async def run_five(
    database_url: str, env: dict[str, str], settings: Settings, timeout: float = 60.0
) -> Batch:
    """Five requests through a new engine, to their end."""
    engine = await open_with(database_url, env, settings, timeout)
    try:
        batch_id = await engine.create_batch(chat_lines(5, model=MODEL))
        return await engine.wait(batch_id, interval=0.05, timeout=60)
    finally:
        await engine.aclose()


async def test_a_batch_below_the_minimum_is_refused_at_create(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    bedrock(emulator).config.min_batch_records = None  # the service's minimum, 100
    env = provider_env(emulator)
    assert "UNIBATCH_BEDROCK_MIN_RECORDS" not in env
    engine = await open_with(database_url, env, fast_settings)
    try:
        with pytest.raises(LimitError, match="gets 5 requests, fewer than the 100 bedrock"):
            await engine.create_batch(chat_lines(5, model=MODEL))
        assert await engine.list_batches() == []
        # Enough requests for the model (the other provider's line changes nothing).
        lines = chat_lines(100, model=MODEL) + chat_lines(1, prefix="o")
        assert await engine.create_batch(lines)
    finally:
        await engine.aclose()


async def test_the_adapter_refuses_a_small_job_before_uploading(
    emulator: RunningEmulator,
) -> None:
    # Follow-up jobs (retries, failover) are planned after the batch was created: the
    # adapter checks the minimum again before anything leaves.
    env = provider_env(emulator)
    env.pop("UNIBATCH_BEDROCK_MIN_RECORDS")
    adapter = BedrockProvider.from_env(spec_of("bedrock"), env)
    job = JobSpec("ubj_small", HAIKU, "/v1/chat/completions", "ubj_small", 5, 500)

    async def lines() -> AsyncIterator[RequestLine]:
        for i, line in enumerate(chat_lines(5, model=MODEL)):
            yield RequestLine(line["custom_id"], {**line["body"], "model": HAIKU}, i)

    try:
        with pytest.raises(LimitError, match="at least 100 records and this one has 5"):
            await adapter.submit(job, lines())
    finally:
        await adapter.aclose()
    assert emulator_state(emulator, "bedrock")["requests_seen"] == {}


async def test_missing_settings_stop_the_submit(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    env = provider_env(emulator)
    del env["UNIBATCH_BEDROCK_ROLE_ARN"]
    engine = await open_with(database_url, env, fast_settings)
    try:
        with pytest.raises(ConfigurationError, match="UNIBATCH_BEDROCK_ROLE_ARN"):
            await engine.create_batch(chat_lines(2, model=MODEL))
        assert await engine.list_batches() == []
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
        ("response_format", {"type": "json_object"}),
        ("seed", 7),
    ],
)
async def test_what_batch_inference_refuses_is_refused_at_submit(
    engine: Engine, emulator: RunningEmulator, field: str, value: object
) -> None:
    requests = chat_lines(3, model=MODEL)
    requests[1]["body"][field] = value
    with pytest.raises(InputError, match=rf"line 2: bedrock.* cannot honour body\.{field}"):
        await engine.create_batch(requests)
    assert emulator_state(emulator, "bedrock")["requests_seen"] == {}


async def test_models_without_a_translation_are_refused_unless_native(
    engine: Engine, emulator: RunningEmulator
) -> None:
    with pytest.raises(InputError, match="Anthropic Claude models only"):
        await engine.create_batch(chat_lines(2, model="bedrock/meta.llama3-70b-instruct-v1:0"))
    # A body in the model's own shape goes as it is (here Claude's, to get an answer).
    native = chat_lines(2, model=MODEL)
    for line in native:
        line["body"] = {
            "model": MODEL,
            "unibatch_native": True,
            "anthropic_version": "bedrock-2023-05-31",
            "max_tokens": 20,
            "messages": [{"role": "user", "content": "hi"}],
        }
    batch_id = await engine.create_batch(native)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.request_counts.succeeded == 2


async def test_create_that_timed_out_is_adopted_not_repeated(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # The emulator records the job, then holds its answer past the client's timeout: the
    # engine must end up with that one job, found by name or by its idempotency token.
    bedrock(emulator).config.create_delay = 1.0
    batch = await run_five(database_url, provider_env(emulator), fast_settings, timeout=0.3)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 5
    assert len(emulator_state(emulator, "bedrock")["batches"]) == 1
