"""A provider's error reaches a key holder with the provider's message, never with the
URL the gateway reaches the provider at."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.gateway.conftest import auth, new_key
from unibatch.emulators.server import RunningEmulator
from unibatch.engine import Engine

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "xai": "xai/grok-4",
    "azure": "azure/gpt-4o-mini",
    "bedrock": "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
    "groq": "groq/llama-3.1-8b-instant",
    "mistral": "mistral/mistral-small-latest",
    "together": "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
}


@pytest.mark.parametrize("provider", sorted(MODELS))
async def test_a_failed_provider_call_shows_its_message_not_our_upstream_url(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator, provider: str
) -> None:
    key = (await new_key(client, "team"))["key"]
    requests = [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}}
        for i in range(2)
    ]
    created = await client.post(
        "/v1/batches", json={"model": MODELS[provider], "requests": requests}, headers=auth(key)
    )
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    # The provider refuses the first call of the submit, for good.
    emulator.emulators[provider].inject_faults(1, status=400)
    await engine.wait(batch_id, interval=0.05, timeout=30)

    batch = (await client.get(f"/v1/batches/{batch_id}", headers=auth(key))).json()
    assert batch["status"] == "failed"
    errors = [e["message"] for e in batch["errors"]["data"]]
    results = await client.get(
        f"/v1/batches/{batch_id}/results", params={"format": "jsonl"}, headers=auth(key)
    )
    seen = {"errors": " ".join(errors), "results": results.text}
    base = emulator.base_url(provider)
    ours = (base, urlsplit(base).netloc, urlsplit(base).path.rstrip("/") + "/")
    for where, text in seen.items():
        assert "Emulated fault." in text, (where, text)
        assert f"{provider}: HTTP 400 on POST /" in text, (where, text)
        for leak in ours:
            assert leak not in text, (where, leak, text)
