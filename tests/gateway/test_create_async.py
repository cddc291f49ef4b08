"""`POST /v1/batches` from a file answers at once (`validating`) and imports after the
answer; bad lines fail the batch OpenAI's way; an `Idempotency-Key` makes a retried create
return the batch it made. The official `openai` SDK against a real server on loopback."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai import ConflictError, OpenAI

from tests.gateway.conftest import MASTER, auth, jsonl, new_key, upload
from tests.gateway.server import running_gateway
from tests.support.emulated import chat_lines, provider_env
from unibatch.config import Settings
from unibatch.emulators.server import RunningEmulator
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.gateway.store import GatewayStore
from unibatch.providers.registry import ProviderSet

TERMINAL = ("completed", "failed", "expired", "cancelled")


def _settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        poll_schedule=(0.1,),
        lease_seconds=10,
        worker_idle=0.05,
        ingest_chunk=200,
    )


@pytest.fixture
def gateway_url(
    database_url: str, emulator: RunningEmulator, gw_settings: GatewaySettings
) -> Iterator[str]:
    app = create_app(
        _settings(database_url),
        gateway_settings=gw_settings,
        providers=ProviderSet(provider_env(emulator)),
    )
    with running_gateway(app) as url:
        yield url


def _client(gateway_url: str, name: str = "sdk") -> OpenAI:
    key = httpx.post(f"{gateway_url}/v1/keys", json={"name": name}, headers=auth(MASTER))
    return OpenAI(base_url=f"{gateway_url}/v1", api_key=key.json()["key"], max_retries=0)


def _upload(client: OpenAI, tmp_path: Path, lines: list[Any], name: str = "in.jsonl") -> str:
    path = tmp_path / name
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return client.files.create(file=path, purpose="batch").id


def _wait(client: OpenAI, batch_id: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        time.sleep(0.05)
    raise AssertionError(f"batch {batch_id} did not finish in {timeout}s")


def _create(client: OpenAI, file_id: str, key: str | None = None, **extra: Any) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else None
    return client.batches.create(
        input_file_id=file_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_headers=headers,
        **extra,
    )


def test_a_create_from_a_file_answers_validating_then_runs(
    gateway_url: str, tmp_path: Path
) -> None:
    client = _client(gateway_url)
    file_id = _upload(client, tmp_path, chat_lines(3000))
    batch = _create(client, file_id, metadata={"run": "big"})
    # The answer came before the import: nothing is counted yet.
    assert batch.status == "validating" and batch.errors is None
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.metadata == {"run": "big"} and batch.input_file_id == file_id
    assert [b.id for b in client.batches.list()] == [batch.id]

    done = _wait(client, batch.id)
    assert done.status == "completed", done
    assert done.request_counts.total == done.request_counts.completed == 3000


def test_a_bad_line_fails_the_batch_naming_the_line(gateway_url: str, tmp_path: Path) -> None:
    client = _client(gateway_url)
    lines: list[Any] = chat_lines(700)
    lines[456] = {"custom_id": "broken", "method": "POST", "url": "/v1/chat/completions"}
    batch = _create(client, _upload(client, tmp_path, lines))
    assert batch.status == "validating"

    failed = _wait(client, batch.id)
    assert failed.status == "failed" and failed.failed_at is not None
    assert failed.errors is not None and failed.errors.object == "list"
    [error] = failed.errors.data
    assert (error.line, error.param, error.code) == (457, "body", "invalid_request")
    assert error.message is not None and "body" in error.message
    assert failed.request_counts.total == 0 and failed.output_file_id is None


def test_an_idempotency_key_returns_the_batch_it_made(gateway_url: str, tmp_path: Path) -> None:
    client = _client(gateway_url)
    file_id = _upload(client, tmp_path, chat_lines(50))
    first = _create(client, file_id, key="create-1")
    again = _create(client, file_id, key="create-1")
    assert again.id == first.id
    assert [b.id for b in client.batches.list()] == [first.id]
    # Once imported, the retry still answers with the same batch.
    assert _wait(client, first.id).status == "completed"
    assert _create(client, file_id, key="create-1").id == first.id

    # The same key for another body is a mistake, said clearly.
    with pytest.raises(ConflictError) as refused:
        _create(client, file_id, key="create-1", metadata={"other": "body"})
    assert "create-1" in refused.value.message and "different body" in refused.value.message
    # Another key, or another caller with the same key, makes a new batch.
    assert _create(client, file_id, key="create-2").id != first.id
    other = _client(gateway_url, "other")
    other_file = _upload(other, tmp_path, chat_lines(5), "other.jsonl")
    assert _create(other, other_file, key="create-1").id != first.id
    assert len(client.batches.list().data) == 2


@pytest.mark.parametrize("inline", [False, True])
def test_concurrent_creates_with_one_key_make_one_batch(
    gateway_url: str, tmp_path: Path, inline: bool
) -> None:
    client = _client(gateway_url)
    file_id = _upload(client, tmp_path, chat_lines(400))
    start = threading.Barrier(4)
    ids: list[str] = []

    def create() -> None:
        start.wait()
        if inline:
            requests = [{"custom_id": r["custom_id"], "body": r["body"]} for r in chat_lines(20)]
            body = {"model": "openai/gpt-4o-mini", "requests": requests}
            response = httpx.post(
                f"{gateway_url}/v1/batches",
                json=body,
                headers={**auth(client.api_key), "Idempotency-Key": "same"},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
        else:
            ids.append(_create(client, file_id, key="same").id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 4 and len(set(ids)) == 1
    assert [b.id for b in client.batches.list()] == ids[:1]
    assert _wait(client, ids[0]).status == "completed"


async def test_a_failed_import_releases_its_budget_reservation(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = await new_key(client, "capped", max_budget=1.0)
    # A key with a budget has its lines checked before the create answers; a custom_id
    # repeated a whole import chunk later is found only by the import, which then fails.
    count = engine.settings.ingest_chunk + 1
    lines: list[Any] = chat_lines(count)
    lines[-1]["custom_id"] = lines[0]["custom_id"]
    file = await upload(client, key["key"], jsonl(lines))
    created = await client.post(
        "/v1/batches",
        json={"input_file_id": file["id"], "endpoint": "/v1/chat/completions"},
        headers=auth(key["key"]),
    )
    assert created.status_code == 200 and created.json()["status"] == "validating"
    failed = await engine.wait(created.json()["id"], interval=0.02, timeout=30)
    assert failed.status == "failed" and failed.validation_errors[0].line == count
    # Its estimate was reserved at the create; a failed batch holds none of the budget.
    assert await GatewayStore(engine.store.engine).spending(key["id"]) == (0.0, 0.0)


async def test_a_create_with_a_bad_idempotency_key_is_refused(client: httpx.AsyncClient) -> None:
    body = {"model": "openai/gpt-4o-mini", "requests": chat_lines(1)}
    for bad in ("x" * 256, "tab\there"):
        response = await client.post(
            "/v1/batches", json=body, headers={**auth(MASTER), "Idempotency-Key": bad}
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == "Idempotency-Key"


def test_an_import_cut_short_by_a_crash_is_failed_when_the_server_restarts(
    database_url: str, emulator: RunningEmulator, gw_settings: GatewaySettings
) -> None:
    """What a server killed mid-import leaves (a `validating` batch whose importer's lease
    has run out, with some of its requests) is `failed` once a server starts again."""

    async def crashed_import() -> str:
        engine = await Engine.open(settings=_settings(database_url))
        try:
            store = GatewayStore(engine.store.engine)
            draft = engine.draft_batch(batch_id="ubb_cut")
            owner = {
                "batch_id": "ubb_cut",
                "key_id": None,
                "input_file_id": "file_x",
                "completion_window": "24h",
                "estimated_cost": 0.0,
                "created_at": time.time(),
            }
            assert await store.reserve_batch(owner, None, batch=draft) is None
            rows = [("ubb_cut", i, f"c{i}", "j", b"", None, None) for i in range(10)]
            await store.import_chunk(
                "ubb_cut", engine.owner, rows, lease_until=0.0, duplicate=AssertionError
            )
        finally:
            await engine.aclose()
        return "ubb_cut"

    batch_id = asyncio.run(crashed_import())
    app = create_app(
        _settings(database_url),
        gateway_settings=gw_settings,
        providers=ProviderSet(provider_env(emulator)),
        worker=False,
    )
    with running_gateway(app) as url:
        client = OpenAI(base_url=f"{url}/v1", api_key=MASTER, max_retries=0)
        batch = client.batches.retrieve(batch_id)
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data[0].code == "import_interrupted"
