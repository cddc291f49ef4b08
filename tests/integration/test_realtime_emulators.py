"""The emulators' synchronous endpoints, judged by the official SDKs: answers parse into
the SDKs' types, errors raise the SDKs' own exceptions, and past a rate-limit knob each
answers 429 in its provider's shape with the delay the provider gives."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from unibatch.emulators import EmulatorConfig, RunningEmulator, running_emulator

CHAT = [{"role": "user", "content": "Say something."}]


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    # Rate windows of a real minute: a test reaches a limit long before its window moves.
    with running_emulator(EmulatorConfig()) as running:
        yield running


def openai_client(emulator: RunningEmulator, provider: str = "openai") -> openai.OpenAI:
    return openai.OpenAI(base_url=emulator.base_url(provider), api_key="k", max_retries=0)


def anthropic_client(emulator: RunningEmulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emulator.base_url("anthropic"), api_key="k", max_retries=0)


def gemini_client(emulator: RunningEmulator) -> genai.Client:
    options = types.HttpOptions(
        base_url=emulator.base_url("gemini"), retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key="k", http_options=options)


@pytest.mark.parametrize("provider", ["openai", "local", "xai"])
def test_openai_sdk_chat_completions(emulator: RunningEmulator, provider: str) -> None:
    client = openai_client(emulator, provider)
    completion = client.chat.completions.create(model="grok-4", messages=CHAT, max_tokens=20)  # type: ignore[arg-type]
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="grok-4",
            messages=[{"role": "user", "content": "emulate-error:400"}],
        )
    assert caught.value.status_code == 400


def test_openai_sdk_embeddings_and_responses(emulator: RunningEmulator) -> None:
    client = openai_client(emulator)
    embedded = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert [item.index for item in embedded.data] == [0, 1]
    assert len(embedded.data[0].embedding) == 8
    response = client.responses.create(model="gpt-4o-mini", input="Say something.")
    assert response.output_text.startswith("Echo: ")
    local = openai_client(emulator, "local")
    assert len(local.embeddings.create(model="nomic-embed-text", input="a").data) == 1


def test_openai_rule_broken_is_openai_s_400(emulator: RunningEmulator) -> None:
    client = openai_client(emulator)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="o3-mini", messages=CHAT, temperature=0.5)  # type: ignore[arg-type]
    assert caught.value.code == "unsupported_value" or caught.value.param == "temperature"


def test_anthropic_sdk_messages(emulator: RunningEmulator) -> None:
    client = anthropic_client(emulator)
    message = client.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=CHAT)  # type: ignore[arg-type]
    assert message.type == "message" and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text.startswith("Echo: ")
    assert message.usage.input_tokens > 0 and message.usage.service_tier == "standard"
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "emulate-error:400"}],
        )
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "emulate-error:529"}],
        )
    assert overloaded.value.status_code == 529


def test_google_genai_generate_and_embed(emulator: RunningEmulator) -> None:
    client = gemini_client(emulator)
    response = client.models.generate_content(model="gemini-2.5-flash", contents="Say something.")
    assert response.text and response.text.startswith("Echo: ")
    assert response.usage_metadata is not None and response.usage_metadata.prompt_token_count
    embedded = client.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
    assert embedded.embeddings is not None and len(embedded.embeddings) == 2
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="emulate-error:400")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    # The single-text endpoint the adapter calls, in Google's REST shape.
    url = f"{emulator.base_url('gemini')}/v1beta/models/gemini-embedding-001:embedContent"
    single = httpx.post(
        url, json={"content": {"parts": [{"text": "a"}]}}, headers={"x-goog-api-key": "k"}
    )
    assert single.status_code == 200 and len(single.json()["embedding"]["values"]) == 8


def test_rpm_knob_answers_each_provider_s_429(emulator: RunningEmulator) -> None:
    emulator.config.update({"max_rpm": 2})
    chat = openai_client(emulator)
    for _ in range(2):
        chat.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as limited:
        chat.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert limited.value.code == "rate_limit_exceeded"
    assert 0 < float(limited.value.response.headers["retry-after"]) <= 60

    claude = anthropic_client(emulator)
    for _ in range(2):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=9, messages=CHAT)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=9, messages=CHAT)  # type: ignore[arg-type]
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "retry-after" in refused.value.response.headers

    gemini = gemini_client(emulator)
    for _ in range(2):
        gemini.models.generate_content(model="gemini-2.5-flash", contents="x")
    with pytest.raises(genai_errors.ClientError) as exhausted:
        gemini.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert exhausted.value.code == 429 and exhausted.value.status == "RESOURCE_EXHAUSTED"
    # Google gives the delay as a RetryInfo detail, not a header.
    details = exhausted.value.details["error"]["details"]
    assert any(d["@type"].endswith("google.rpc.RetryInfo") for d in details)

    for provider in ("xai", "local"):
        grok = openai_client(emulator, provider)
        for _ in range(2):
            grok.chat.completions.create(model="grok-4", messages=CHAT)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError):
            grok.chat.completions.create(model="grok-4", messages=CHAT)  # type: ignore[arg-type]
    limited_count = sum(e.realtime.limited for e in emulator.emulators.values())
    assert limited_count == 5


def test_tpm_knob(emulator: RunningEmulator) -> None:
    emulator.config.update({"max_tpm": 100})
    client = openai_client(emulator)
    client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, max_tokens=60)  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, max_tokens=60)  # type: ignore[arg-type]
