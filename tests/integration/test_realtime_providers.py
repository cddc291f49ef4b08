"""Every adapter's real-time path against its emulator, through the engine: the same
requests as a Batch API job give the same answers and usage, marked `realtime`, priced at
the list price (the batch cost divided by the provider's batch discount)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.emulated import chat_lines, open_engine
from unibatch.emulators import RunningEmulator
from unibatch.providers.registry import spec_of
from unibatch.types import RequestStatus, Result

CASES = [
    ("openai/gpt-4o-mini", "/v1/chat/completions"),
    ("anthropic/claude-haiku-4-5", "/v1/chat/completions"),
    ("gemini/gemini-2.5-flash", "/v1/chat/completions"),
    ("xai/grok-4", "/v1/chat/completions"),
    ("azure/gpt-4o-mini", "/v1/chat/completions"),
    ("groq/llama-3.1-8b-instant", "/v1/chat/completions"),
    ("mistral/mistral-small-latest", "/v1/chat/completions"),
    ("mistral/mistral-embed", "/v1/embeddings"),
    ("together/meta-llama/Llama-3.3-70B-Instruct-Turbo", "/v1/chat/completions"),
    ("openai/text-embedding-3-small", "/v1/embeddings"),
    ("gemini/gemini-embedding-001", "/v1/embeddings"),
]


def lines(model: str, endpoint: str, n: int = 12) -> list[dict[str, Any]]:
    if endpoint == "/v1/chat/completions":
        return chat_lines(n, model)
    return [
        {"custom_id": f"e-{i}", "url": endpoint, "body": {"model": model, "input": f"text {i}"}}
        for i in range(n)
    ]


def answer(result: Result) -> Any:
    body = result.response or {}
    if "choices" in body:
        return body["choices"][0]["message"]["content"]
    return [item["embedding"] for item in body["data"]]


@pytest.mark.parametrize(("model", "endpoint"), CASES)
async def test_realtime_answers_match_the_batch_path_at_list_price(
    database_url: str,
    emulator: RunningEmulator,
    fast_settings: Any,
    model: str,
    endpoint: str,
) -> None:
    provider = model.split("/", 1)[0]
    batch_engine = await open_engine(database_url, emulator, fast_settings)
    realtime = fast_settings.model_copy(update={"realtime_providers": frozenset({provider})})
    realtime_engine = await open_engine(database_url, emulator, realtime)
    try:
        by_batch = await batch_engine.create_batch(lines(model, endpoint))
        await batch_engine.wait(by_batch, interval=0.05, timeout=60)
        seen_before = sum(emulator.emulators[provider].requests_seen.values())
        by_realtime = await realtime_engine.create_batch(lines(model, endpoint))
        done = await realtime_engine.wait(by_realtime, interval=0.05, timeout=60)
        assert done.request_counts.succeeded == 12
        batched = [r async for r in batch_engine.results(by_batch)]
        direct = [r async for r in realtime_engine.results(by_realtime)]
    finally:
        await batch_engine.aclose()
        await realtime_engine.aclose()
    # One synchronous call per request, nothing else (no files, no batches).
    gate = emulator.emulators[provider].realtime
    assert sum(emulator.emulators[provider].requests_seen.values()) - seen_before == 12
    assert sum(gate.answers.values()) == 12
    discount = spec_of(provider).batch_discount
    for slow, fast in zip(batched, direct, strict=True):
        assert fast.status is RequestStatus.SUCCEEDED and fast.custom_id == slow.custom_id
        assert (slow.mode, fast.mode) == ("batch", "realtime")
        assert answer(fast) == answer(slow)
        assert fast.usage == slow.usage
        assert slow.cost is not None and fast.cost is not None
        # Gemini's embedding answers carry no token counts: nothing to price there.
        assert fast.cost.total > 0 or fast.usage.input_tokens == 0
        assert fast.cost.total == pytest.approx(slow.cost.total / discount)
