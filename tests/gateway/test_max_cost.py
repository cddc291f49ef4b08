"""`max_cost` on the gateway: in the JSON API and in OpenAI's metadata, refused before
anything is sent when the estimate is over it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.conftest import auth, new_key
from tests.support.emulated import emulator_state

REQUESTS = [
    {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": f"n{i}"}]}}
    for i in range(3)
]


async def _create(client: httpx.AsyncClient, key: str, **extra: Any) -> httpx.Response:
    return await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": REQUESTS, **extra},
        headers=auth(key),
    )


async def test_max_cost_refuses_before_sending(client: httpx.AsyncClient, emulator: Any) -> None:
    key = (await new_key(client, "capped"))["key"]
    refused = await _create(client, key, max_cost=0.0000001)
    assert refused.status_code == 400, refused.text
    assert "over its max_cost" in refused.json()["error"]["message"]
    by_metadata = await _create(client, key, metadata={"max_cost": "0.0000001"})
    assert by_metadata.status_code == 400
    assert emulator_state(emulator)["batches"] == []
    bad = await _create(client, key, metadata={"max_cost": "lots"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata.max_cost"
    disagree = await _create(client, key, max_cost=5.0, metadata={"max_cost": "6"})
    assert disagree.status_code == 400 and disagree.json()["error"]["param"] == "max_cost"
    fits = await _create(client, key, max_cost=5.0, metadata={"max_cost": "5"})
    assert fits.status_code == 200, fits.text
