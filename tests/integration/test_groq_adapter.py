"""What the Groq adapter adds to OpenAI's: the completion window it asks for, and finding a
lost batch through Groq's cursor-paged list, against the Groq emulator."""

from __future__ import annotations

import time

import pytest

from tests.support.emulated import chat_lines, emulator_state, provider_env
from unibatch.emulators import RunningEmulator
from unibatch.errors import ConfigurationError, InputError
from unibatch.providers.base import JobSpec, RequestLine
from unibatch.providers.groq import SPEC
from unibatch.providers.groq.adapter import GroqProvider

MODEL = "groq/llama-3.1-8b-instant"


def groq(emulator: RunningEmulator, **env: str) -> GroqProvider:
    return GroqProvider.from_env(SPEC, {**provider_env(emulator), **env})


async def submit(provider: GroqProvider, tag: str) -> str:
    async def lines():  # type: ignore[no-untyped-def]
        for i, line in enumerate(chat_lines(2, MODEL)):
            yield RequestLine(line["custom_id"], line["body"], i)

    spec = JobSpec(f"job-{tag}", "llama-3.1-8b-instant", "/v1/chat/completions", tag, 2, 100)
    return (await provider.submit(spec, lines())).id


async def test_the_window_asked_for_is_sent_and_sets_the_maximum_age(
    emulator: RunningEmulator,
) -> None:
    provider = groq(emulator, UNIBATCH_GROQ_COMPLETION_WINDOW="3d")
    try:
        assert provider.spec.completion_window == 3 * 86400
        batch_id = await submit(provider, "t-window")
        seen = await provider._call("GET", f"batches/{batch_id}")
        assert seen["completion_window"] == "3d"
    finally:
        await provider.aclose()


@pytest.mark.parametrize("window", ["12h", "8d", "1w"])
def test_a_window_groq_does_not_take_is_a_configuration_error(
    emulator: RunningEmulator, window: str
) -> None:
    with pytest.raises(ConfigurationError, match="UNIBATCH_GROQ_COMPLETION_WINDOW"):
        groq(emulator, UNIBATCH_GROQ_COMPLETION_WINDOW=window)


async def test_find_pages_through_the_list(emulator: RunningEmulator) -> None:
    provider = groq(emulator)
    try:
        since = time.time() - 1
        wanted = await submit(provider, "t-first")
        for i in range(21):  # one page and more after it
            await submit(provider, f"t-other-{i}")
        found = await provider.find("t-first", since=since)
        assert found is not None and found.id == wanted
        assert await provider.find("t-none", since=since) is None
        calls = emulator_state(emulator, "groq")["requests_seen"]
        assert calls["GET /openai/v1/batches"] == 4  # two pages per search
    finally:
        await provider.aclose()


def test_groq_rules_refuse_before_sending() -> None:
    translator = GroqProvider.translator
    body = {"model": "llama-3.1-8b-instant", "messages": [{"role": "user", "content": "x"}]}
    translator.validate("/v1/chat/completions", {**body, "n": 1})
    named = {**body, "messages": [{"role": "user", "content": "x", "name": "ann"}]}
    with pytest.raises(InputError, match=r"groq cannot honour body\.messages"):
        translator.validate("/v1/chat/completions", named)
    with pytest.raises(InputError, match="top_logprobs"):
        translator.validate("/v1/chat/completions", {**body, "top_logprobs": 2})
