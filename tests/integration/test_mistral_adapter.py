"""What the Mistral adapter does on its own: translation of OpenAI bodies, and finding a
lost job by its metadata tag through the job list, against the Mistral emulator."""

from __future__ import annotations

import time

import pytest

from tests.support.emulated import chat_lines, emulator_state, provider_env
from unibatch.emulators import RunningEmulator
from unibatch.errors import InputError
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.providers.mistral import SPEC
from unibatch.providers.mistral.adapter import MistralProvider
from unibatch.providers.translate import CHAT, EMBEDDINGS

MODEL = "mistral/mistral-small-latest"


async def submit(provider: MistralProvider, tag: str) -> str:
    async def lines():  # type: ignore[no-untyped-def]
        for i, line in enumerate(chat_lines(2, MODEL)):
            yield RequestLine(line["custom_id"], line["body"], i)

    spec = JobSpec(f"job-{tag}", "mistral-small-latest", CHAT, tag, 2, 100)
    return (await provider.submit(spec, lines())).id


async def test_find_matches_the_tag_among_recent_jobs(emulator: RunningEmulator) -> None:
    provider = MistralProvider.from_env(SPEC, provider_env(emulator))
    try:
        since = time.time() - 1
        wanted = await submit(provider, "t-first")
        await submit(provider, "t-second")
        found = await provider.find("t-first", since=since)
        assert found is not None and found.id == wanted and found.tag == "t-first"
        assert await provider.find("t-none", since=since) is None
        assert await provider.find("t-first", since=time.time() + 60) is None
        calls = emulator_state(emulator, "mistral")["requests_seen"]
        assert calls["GET /v1/batch/jobs"] == 3
    finally:
        await provider.aclose()


def test_openai_fields_are_renamed_and_unknown_ones_refused() -> None:
    translator = MistralProvider.translator
    chat = {"model": "m", "messages": [], "seed": 3, "max_completion_tokens": 9, "user": "u"}
    assert translator.to_native(CHAT, chat) == {
        "model": "m",
        "messages": [],
        "random_seed": 3,
        "max_tokens": 9,
    }
    embed = {"model": "mistral-embed", "input": ["a"], "dimensions": 256}
    assert translator.to_native(EMBEDDINGS, embed)["output_dimension"] == 256
    with pytest.raises(InputError, match=r"mistral cannot honour body\.logit_bias"):
        translator.validate(CHAT, {"model": "m", "messages": [], "logit_bias": {"1": 1}})
    with pytest.raises(InputError, match="max_completion_tokens"):
        translator.validate(
            CHAT, {"model": "m", "messages": [], "max_tokens": 1, "max_completion_tokens": 2}
        )
