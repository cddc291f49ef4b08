"""Gateway fixtures: the app in-process over the shared engine, keys, uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr

from unibatch.emulators import EmulatorConfig
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app

MASTER = "master-test-key"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Gateway tests only need batches to finish: let them finish faster."""
    return EmulatorConfig(time_scale=0.02, min_batch_records=1)


@pytest.fixture
def gw_settings(tmp_path: Path) -> GatewaySettings:
    return GatewaySettings(
        master_key=SecretStr(MASTER), files_dir=tmp_path / "files", max_body_bytes=1_000_000
    )


@pytest.fixture
async def client(engine: Engine, gw_settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process, no worker: tests drive batches with `engine.wait`."""
    app = create_app(engine, gateway_settings=gw_settings, worker=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def new_key(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/v1/keys", json={"name": name, **extra}, headers=auth(MASTER))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


async def upload(client: httpx.AsyncClient, key: str, data: bytes) -> dict[str, Any]:
    response = await client.post(
        "/v1/files",
        files={"file": ("in.jsonl", data, "application/jsonl")},
        data={"purpose": "batch"},
        headers=auth(key),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_from_file(
    client: httpx.AsyncClient, key: str, lines: list[dict[str, Any]]
) -> httpx.Response:
    file = await upload(client, key, jsonl(lines))
    return await client.post(
        "/v1/batches",
        json={
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=auth(key),
    )


async def import_error(
    client: httpx.AsyncClient, engine: Engine, created: httpx.Response, key: str = MASTER
) -> dict[str, Any]:
    """The first of `errors` of a batch created from a file with a bad line: the create
    answers `validating` before the file is read, and the line then fails the batch."""
    assert created.status_code == 200, created.text
    assert created.json()["status"] == "validating"
    batch_id = created.json()["id"]
    await engine.wait(batch_id, interval=0.02, timeout=30)
    batch = (await client.get(f"/v1/batches/{batch_id}", headers=auth(key))).json()
    assert batch["status"] == "failed" and batch["failed_at"] is not None, batch
    assert batch["request_counts"]["total"] == 0 and batch["output_file_id"] is None
    assert batch["errors"]["object"] == "list"
    first: dict[str, Any] = batch["errors"]["data"][0]
    assert set(first) == {"code", "message", "param", "line"}
    return first
