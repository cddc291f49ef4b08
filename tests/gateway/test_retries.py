"""Retries through the gateway: `max_attempts` in the JSON API or the metadata, usage
recorded for every attempt billed, and the `POST /v1/batches/{id}/retry` extension."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.conftest import MASTER, auth, create_from_file, new_key
from tests.support.emulated import chat_lines, emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine


def _requests(n: int, text: str = "n") -> list[dict[str, Any]]:
    return [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": f"{text}{i}"}]}}
        for i in range(n)
    ]


async def _usage(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/v1/usage", headers=auth(MASTER))
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows[0]


async def test_json_api_max_attempts_retries_and_bills_every_attempt(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.update({"retryable_failure_rate": 0.3})
    key = (await new_key(client, "retries"))["key"]
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": _requests(40), "max_attempts": 10},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    await engine.wait(batch_id, interval=0.05, timeout=60)
    page = (await client.get(f"/v1/batches/{batch_id}/results?limit=100", headers=auth(key))).json()
    assert all(r["status"] == "succeeded" for r in page["data"])
    retried = [r for r in page["data"] if r["attempts"] > 1]
    assert retried and all(len(r["history"]) == r["attempts"] - 1 for r in retried)
    # One usage event per attempt the provider ran.
    usage = await _usage(client)
    assert usage["requests"] == sum(r["attempts"] for r in page["data"])
    sent = emulator_state(emulator)["batches"]
    assert usage["requests"] == sum(b["request_count"] for b in sent)


async def test_openai_create_takes_max_attempts_in_metadata(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.update({"retryable_failure_rate": 1.0})
    key = (await new_key(client, "meta"))["key"]
    lines = chat_lines(3)
    created = await create_from_file(client, key, lines)
    assert created.status_code == 200, created.text
    await engine.wait(created.json()["id"], interval=0.05, timeout=60)
    # Default: three attempts. With metadata max_attempts 1: one.
    assert len(emulator_state(emulator)["batches"]) == 3
    uploads = await client.get("/v1/files?purpose=batch", headers=auth(key))
    file = uploads.json()["data"][0]
    one = await client.post(
        "/v1/batches",
        json={
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"max_attempts": "1"},
        },
        headers=auth(key),
    )
    assert one.status_code == 200, one.text
    await engine.wait(one.json()["id"], interval=0.05, timeout=60)
    assert len(emulator_state(emulator)["batches"]) == 4
    bad = await client.post(
        "/v1/batches",
        json={"input_file_id": file["id"], "metadata": {"max_attempts": "lots"}},
        headers=auth(key),
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "metadata.max_attempts"


async def test_retry_endpoint_reruns_failures_on_another_model(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    key = (await new_key(client, "manual"))["key"]
    created = await client.post(
        "/v1/batches",
        json={
            "model": "openai/gpt-4o-mini",
            "requests": _requests(3, "emulate-error:400 "),
            "max_attempts": 1,
        },
        headers=auth(key),
    )
    batch_id = created.json()["id"]
    early = await client.post(f"/v1/batches/{batch_id}/retry", headers=auth(key))
    assert early.status_code == 409
    await engine.wait(batch_id, interval=0.05, timeout=60)
    other = (await new_key(client, "other"))["key"]
    assert (
        await client.post(f"/v1/batches/{batch_id}/retry", headers=auth(other))
    ).status_code == 404

    retried = await client.post(
        f"/v1/batches/{batch_id}/retry",
        json={"model": "anthropic/claude-haiku-4-5", "statuses": ["errored"], "max_attempts": 1},
        headers=auth(key),
    )
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert body["retried"] == 3 and body["refused"] == []
    assert body["batch"]["status"] != "completed"
    await engine.wait(batch_id, interval=0.05, timeout=60)
    page = (await client.get(f"/v1/batches/{batch_id}/results", headers=auth(key))).json()
    assert {(r["provider"], r["attempts"]) for r in page["data"]} == {("anthropic", 2)}
    assert {r["history"][0]["provider"] for r in page["data"]} == {"openai"}
