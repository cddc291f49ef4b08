"""Output and error files: generated from the results as OpenAI output lines."""

from __future__ import annotations

import httpx
import orjson

from tests.gateway.conftest import auth, create_from_file, new_key
from tests.support.emulated import chat_lines
from unibatch.emulators.server import RunningEmulator
from unibatch.engine import Engine


async def test_partial_failure_splits_results_into_output_and_error_files(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.config.failure_rate = 0.5
    key = (await new_key(client, "files"))["key"]
    created = (await create_from_file(client, key, chat_lines(30))).json()
    early = await client.get(f"/v1/files/file-out-{created['id']}", headers=auth(key))
    assert early.status_code == 404  # no output file before the batch ends
    await engine.wait(created["id"], interval=0.05, timeout=30)
    batch = (await client.get(f"/v1/batches/{created['id']}", headers=auth(key))).json()
    counts = batch["request_counts"]
    assert counts["total"] == 30 and 0 < counts["completed"] < 30
    assert counts["completed"] + counts["failed"] == 30

    def lines(response: httpx.Response) -> list[dict[str, object]]:
        assert response.status_code == 200, response.text
        return [orjson.loads(line) for line in response.content.splitlines()]

    ok = lines(await client.get(f"/v1/files/{batch['output_file_id']}/content", headers=auth(key)))
    bad = lines(await client.get(f"/v1/files/{batch['error_file_id']}/content", headers=auth(key)))
    assert len(ok) == counts["completed"] and len(bad) == counts["failed"]
    assert all(row["response"]["status_code"] == 200 for row in ok)  # type: ignore[index]
    assert all(
        row["error"] is not None or row["response"]["status_code"] >= 400  # type: ignore[index]
        for row in bad
    )
    meta = (await client.get(f"/v1/files/{batch['error_file_id']}", headers=auth(key))).json()
    assert meta["purpose"] == "batch_output" and meta["bytes"] > 0
    deleted = await client.delete(f"/v1/files/{batch['output_file_id']}", headers=auth(key))
    assert deleted.status_code == 400
    usage = (await client.get("/v1/usage", headers=auth(key))).json()["data"]
    # Errored requests are events too, one per attempt (the 500s were sent again).
    attempts = [r.attempts async for r in engine.results(created["id"])]
    assert len(attempts) == 30 and max(attempts) > 1
    assert sum(row["requests"] for row in usage) == sum(attempts)


def _inline(n: int) -> dict[str, object]:
    requests = [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": "hi"}]}}
        for i in range(n)
    ]
    return {"model": "openai/gpt-4o-mini", "requests": requests}


async def test_a_failed_batch_has_a_readable_error_file(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    key = (await new_key(client, "files"))["key"]
    created = (await client.post("/v1/batches", json=_inline(3), headers=auth(key))).json()
    emulator.emulators["openai"].inject_faults(1, status=400)  # the provider refuses it
    await engine.wait(created["id"], interval=0.05, timeout=30)
    batch = (await client.get(f"/v1/batches/{created['id']}", headers=auth(key))).json()
    assert batch["status"] == "failed"
    assert batch["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
    content = await client.get(f"/v1/files/{batch['error_file_id']}/content", headers=auth(key))
    assert content.status_code == 200, content.text
    assert len(content.content.splitlines()) == 3


async def test_cancelled_requests_are_not_counted_as_failed(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = (await new_key(client, "files"))["key"]
    created = (await client.post("/v1/batches", json=_inline(4), headers=auth(key))).json()
    # Cancelled before a worker sent it: every request ends cancelled.
    cancelled = await client.post(f"/v1/batches/{created['id']}/cancel", headers=auth(key))
    assert cancelled.status_code == 200, cancelled.text
    await engine.wait(created["id"], interval=0.05, timeout=30)
    batch = (await client.get(f"/v1/batches/{created['id']}", headers=auth(key))).json()
    assert batch["status"] == "cancelled"
    assert batch["request_counts"] == {"total": 4, "completed": 0, "failed": 0}
    # They are still listed, with their error, in the error file (as OpenAI lists them).
    content = await client.get(f"/v1/files/{batch['error_file_id']}/content", headers=auth(key))
    assert content.status_code == 200, content.text
    assert len(content.content.splitlines()) == 4
