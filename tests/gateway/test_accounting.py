"""Budgets reserve an estimate and settle on actual cost; usage is counted exactly once."""

from __future__ import annotations

import time

import httpx
import pytest
import sqlalchemy as sa

from tests.gateway.conftest import MASTER, auth, new_key
from tests.support.emulated import chat_lines
from unibatch.codec import RESULT_COLUMNS
from unibatch.engine import Engine
from unibatch.gateway.accounting import record_usage
from unibatch.gateway.tables import gateway_usage
from unibatch.store.tables import jobs, results


def _json_batch(n: int, prefix: str = "r") -> dict[str, object]:
    return {
        "model": "openai/gpt-4o-mini",
        "requests": [
            {"custom_id": line["custom_id"], "body": line["body"]}
            for line in chat_lines(n, prefix=prefix)
        ],
    }


async def _key_state(client: httpx.AsyncClient, key_id: str) -> dict[str, object]:
    keys = (await client.get("/v1/keys", headers=auth(MASTER))).json()["data"]
    return next(k for k in keys if k["id"] == key_id)


async def test_budget_reserves_the_estimate_refuses_overruns_and_settles_on_actual_cost(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    # 20 short gpt-4o-mini requests (max_tokens 50) are estimated at about $0.0003.
    key = await new_key(client, "capped", max_budget=0.001)
    first = await client.post("/v1/batches", json=_json_batch(20), headers=auth(key["key"]))
    assert first.status_code == 200, first.text
    state = await _key_state(client, key["id"])
    assert state["reserved"] > 0 and state["spent"] == 0

    refused = await client.post(
        "/v1/batches", json=_json_batch(2000, "big"), headers=auth(key["key"])
    )
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "budget" in error["message"]
    # A refused batch leaves nothing behind.
    listed = (await client.get("/v1/batches", headers=auth(key["key"]))).json()["data"]
    assert [b["id"] for b in listed] == [first.json()["id"]]

    batch = await engine.wait(first.json()["id"], interval=0.05, timeout=30)
    state = await _key_state(client, key["id"])
    assert state["reserved"] == 0
    assert state["spent"] == pytest.approx(batch.cost.total) and batch.cost.total > 0


async def test_unknown_price_is_refused_only_for_keys_with_a_budget(
    client: httpx.AsyncClient,
) -> None:
    # The top-level model fills in bodies that name none.
    body = {
        "model": "openai/no-such-model-xyz",
        "requests": [{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
    }
    capped = await new_key(client, "capped", max_budget=10)
    refused = await client.post("/v1/batches", json=body, headers=auth(capped["key"]))
    assert refused.status_code == 400 and "no-such-model-xyz" in refused.json()["error"]["message"]
    free = await new_key(client, "free")
    assert (
        await client.post("/v1/batches", json=body, headers=auth(free["key"]))
    ).status_code == 200


async def test_usage_is_recorded_once_per_result_never_on_reads_nor_on_replays(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = await new_key(client, "team")
    created = await client.post("/v1/batches", json=_json_batch(12), headers=auth(key["key"]))
    batch = await engine.wait(created.json()["id"], interval=0.05, timeout=30)

    async def usage() -> list[dict[str, object]]:
        data: list[dict[str, object]] = (
            await client.get("/v1/usage", headers=auth(key["key"]))
        ).json()["data"]
        return data

    first = await usage()
    assert len(first) == 1
    row = first[0]
    assert (row["key_id"], row["key_name"], row["provider"], row["model"]) == (
        key["id"],
        "team",
        "openai",
        "gpt-4o-mini",
    )
    assert row["requests"] == 12
    assert row["input_tokens"] == batch.usage.input_tokens
    assert row["cost"] == pytest.approx(batch.cost.total)
    # Reading results and files adds nothing.
    await client.get(f"/v1/batches/{batch.id}/results", headers=auth(key["key"]))
    await client.get(f"/v1/files/file-out-{batch.id}/content", headers=auth(key["key"]))
    assert await usage() == first

    # A worker that crashed after storing results replays them: same rows, same hook.
    async with engine.store.engine.connect() as conn:
        stored = [
            dict(r)
            for r in (
                await conn.execute(sa.select(results).where(results.c.batch_id == batch.id))
            ).mappings()
        ]
    records = [tuple(row[c] for c in RESULT_COLUMNS) for row in stored]
    async with engine.store.engine.begin() as conn:
        await record_usage(conn, batch.id, records)
    job_id = stored[0]["job_id"]
    async with engine.store.engine.begin() as conn:
        await conn.execute(
            jobs.update().where(jobs.c.id == job_id).values(lease_owner="t", lease_until=2e9)
        )
    replay = [r for r, row in zip(records, stored, strict=True) if row["job_id"] == job_id]
    assert await engine.store.insert_results(
        replay, job_id=job_id, owner="t", lease_until=time.time() + 60
    )
    assert await usage() == first
    async with engine.store.engine.connect() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(gateway_usage))).scalar()
    assert count == 12
    # The master key sees every key's usage.
    everyone = (await client.get("/v1/usage", headers=auth(MASTER))).json()["data"]
    assert everyone == first
    one = await client.get("/v1/usage", params={"key_id": key["id"]}, headers=auth(MASTER))
    assert one.json()["data"] == first
    other = await new_key(client, "other")
    peek = await client.get("/v1/usage", params={"key_id": key["id"]}, headers=auth(other["key"]))
    assert peek.json()["data"] == []
