"""Failover and deadlines through the gateway: `fallback_models`, `stuck_after` and
`deadline` in the JSON API or the metadata of OpenAI's create."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.conftest import auth, create_from_file, new_key
from tests.support.emulated import chat_lines, emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine

HAIKU = "anthropic/claude-haiku-4-5"


async def _create(
    client: httpx.AsyncClient, key: str, file_id: str, metadata: dict[str, str]
) -> httpx.Response:
    """OpenAI's create, as its SDK sends it, with `metadata`."""
    return await client.post(
        "/v1/batches",
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": metadata,
        },
        headers=auth(key),
    )


def _requests(n: int) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": f"n{i}"}]}}
        for i in range(n)
    ]


async def test_json_api_fallback_models_fail_over(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.update({"fail_batches": 1})
    key = (await new_key(client, "failover"))["key"]
    requests = _requests(5)
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": requests, "fallback_models": [HAIKU]},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    await engine.wait(batch_id, interval=0.05, timeout=60)
    page = (await client.get(f"/v1/batches/{batch_id}/results", headers=auth(key))).json()
    assert [(r["status"], r["provider"]) for r in page["data"]] == [("succeeded", "anthropic")] * 5
    assert all(r["history"][0]["provider"] == "openai" for r in page["data"])


async def test_openai_create_takes_failover_in_metadata(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    key = (await new_key(client, "failover-meta"))["key"]
    created = await create_from_file(client, key, chat_lines(3))
    assert created.status_code == 200, created.text
    file_id = (await client.get("/v1/files", headers=auth(key))).json()["data"][0]["id"]
    # The OpenAI batch of this second create never leaves in_progress.
    emulator.openai.config.update({"hold_batches": 1})
    moved = await _create(client, key, file_id, {"fallback_models": HAIKU, "stuck_after": "0.2s"})
    assert moved.status_code == 200, moved.text
    batch = await engine.wait(moved.json()["id"], interval=0.05, timeout=60)
    assert batch.request_counts.succeeded == 3
    assert len(emulator_state(emulator, "anthropic")["batches"]) == 1
    bad = await client.post(
        "/v1/batches",
        json={"input_file_id": file_id, "metadata": {"fallback_models": "nowhere"}},
        headers=auth(key),
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "fallback_models"
    late = await client.post(
        "/v1/batches",
        json={"input_file_id": file_id, "metadata": {"stuck_after": "soon"}},
        headers=auth(key),
    )
    assert late.status_code == 400
    assert late.json()["error"]["param"] == "metadata.stuck_after"


async def test_a_deadline_in_the_json_api_or_the_metadata(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    key = (await new_key(client, "deadline"))["key"]
    requests = _requests(3)
    # Five minutes leave no time for a provider batch: it all runs in real time.
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": requests, "deadline": "5m"},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    batch = await engine.wait(created.json()["id"], interval=0.05, timeout=60)
    assert batch.deadline is not None and batch.deadline_switched_at is not None
    shown = (await client.get(f"/v1/batches/{batch.id}", headers=auth(key))).json()
    assert shown["deadline"] == int(batch.deadline)
    assert shown["deadline_switched_at"] == int(batch.deadline_switched_at)
    page = (await client.get(f"/v1/batches/{batch.id}/results", headers=auth(key))).json()
    assert [(r["status"], r["mode"]) for r in page["data"]] == [("succeeded", "realtime")] * 3
    assert emulator_state(emulator)["batches"] == []

    await create_from_file(client, key, chat_lines(2))
    file_id = (await client.get("/v1/files", headers=auth(key))).json()["data"][0]["id"]
    meta = await _create(client, key, file_id, {"deadline": "2030-01-01T09:00:00Z"})
    assert meta.status_code == 200, meta.text
    # Answered before the file is read, as OpenAI does; the deadline is on the batch.
    made = await engine.get_batch(meta.json()["id"], importing=True)
    assert made.deadline == 1893488400.0
    for body, param in (
        ({"metadata": {"deadline": "2020-01-01T00:00:00Z"}}, "deadline"),
        ({"metadata": {"deadline": "2030-01-01T09:00:00"}}, "deadline"),
        ({"deadline": "1h", "metadata": {"deadline": "2h"}}, "deadline"),
    ):
        bad = await client.post(
            "/v1/batches", json={"input_file_id": file_id, **body}, headers=auth(key)
        )
        assert bad.status_code == 400, bad.text
        assert bad.json()["error"]["param"] == param
