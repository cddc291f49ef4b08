"""The JSON API: inline `requests` on POST /v1/batches, results paged or streamed."""

from __future__ import annotations

import httpx
import orjson

from tests.gateway.conftest import auth, new_key
from unibatch.engine import Engine


def _requests(n: int) -> list[dict[str, object]]:
    return [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": f"n{i}"}]}}
        for i in range(n)
    ]


async def test_inline_requests_results_409_until_done_then_pages_and_jsonl(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = (await new_key(client, "json"))["key"]
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": _requests(5), "metadata": {"a": "b"}},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    batch = created.json()
    assert batch["input_file_id"] is None and batch["request_counts"]["total"] == 5
    assert batch["metadata"] == {"a": "b"}

    early = await client.get(f"/v1/batches/{batch['id']}/results", headers=auth(key))
    assert early.status_code == 409
    assert early.json()["error"]["code"] == "batch_not_finished"
    assert "validating" in early.json()["error"]["message"]

    await engine.wait(batch["id"], interval=0.05, timeout=30)
    url = f"/v1/batches/{batch['id']}/results"
    page = (await client.get(url, params={"limit": 2}, headers=auth(key))).json()
    assert [r["custom_id"] for r in page["data"]] == ["q0", "q1"] and page["has_more"]
    first = page["data"][0]
    assert first["status"] == "succeeded" and first["provider"] == "openai"
    assert first["model"] == "gpt-4o-mini" and first["usage"]["input_tokens"] > 0
    rest = (
        await client.get(url, params={"limit": 10, "after": page["last_id"]}, headers=auth(key))
    ).json()
    assert [r["custom_id"] for r in rest["data"]] == ["q2", "q3", "q4"]
    assert not rest["has_more"] and rest["last_id"] == "q4"
    with_provider = await client.get(url, params={"provider": "openai"}, headers=auth(key))
    assert with_provider.status_code == 200

    streamed = await client.get(url, params={"format": "jsonl"}, headers=auth(key))
    assert streamed.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in streamed.content.splitlines()]
    assert [r["custom_id"] for r in lines] == [f"q{i}" for i in range(5)]

    accepted = await client.get(url, headers={**auth(key), "Accept": "application/x-ndjson"})
    assert accepted.content == streamed.content

    bad_cursor = await client.get(url, params={"after": "nope"}, headers=auth(key))
    assert bad_cursor.status_code == 400 and bad_cursor.json()["error"]["param"] == "after"


async def test_batch_list_pages_with_the_openai_cursor(client: httpx.AsyncClient) -> None:
    key = (await new_key(client, "pager"))["key"]
    ids = []
    for _ in range(3):
        response = await client.post(
            "/v1/batches",
            json={"model": "openai/gpt-4o-mini", "requests": _requests(1)},
            headers=auth(key),
        )
        ids.append(response.json()["id"])
    newest_first = ids[::-1]
    page = (await client.get("/v1/batches", params={"limit": 2}, headers=auth(key))).json()
    assert [b["id"] for b in page["data"]] == newest_first[:2]
    assert page["has_more"] and page["first_id"] == newest_first[0]
    after = page["last_id"]
    rest = (await client.get("/v1/batches", params={"after": after}, headers=auth(key))).json()
    assert [b["id"] for b in rest["data"]] == newest_first[2:] and not rest["has_more"]
