"""Every kind of bad input gets a 4xx in OpenAI's error shape that says what is wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import MASTER, auth, import_error, jsonl, upload
from tests.support.emulated import chat_lines
from unibatch.config import Settings
from unibatch.emulators.server import RunningEmulator
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.providers.registry import ProviderSet

H = auth(MASTER)


def _error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


async def _failed(client: httpx.AsyncClient, engine: Engine, data: bytes) -> dict[str, Any]:
    return await import_error(client, engine, await _create(client, data))


async def test_invalid_lines_are_named_by_line_number(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    good = jsonl(chat_lines(2))
    error = await _failed(client, engine, good + b"{not json\n")
    assert error["line"] == 3 and error["message"].startswith("not valid JSON")
    # The stored upload's path on the server never leaks.
    assert "/" not in error["message"]

    lines = chat_lines(3)
    lines[1] = {**lines[1], "custom_id": lines[0]["custom_id"]}
    error = await _failed(client, engine, jsonl(lines))
    assert (error["line"], error["param"]) == (2, "custom_id")
    assert error["message"].startswith("duplicate custom_id")
    streaming = chat_lines(1)
    streaming[0]["body"]["stream"] = True
    assert (await _failed(client, engine, jsonl(streaming)))["line"] == 1
    empty = await _failed(client, engine, b"\n")
    assert (empty["message"], empty["line"]) == ("no requests", None)


async def _create(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    file = await upload(client, MASTER, data)
    return await client.post(
        "/v1/batches",
        json={
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers=H,
    )


@pytest.mark.parametrize(
    ("model", "named"),
    [("cohere/command-r", "'cohere'"), ("gpt-4o-mini", "'gpt-4o-mini'"), ("", "body.model")],
)
async def test_unknown_models_and_providers_are_named(
    client: httpx.AsyncClient, engine: Engine, model: str, named: str
) -> None:
    lines = chat_lines(2, model=model)
    error = await _failed(client, engine, jsonl(lines))
    assert named in error["message"] and (error["line"], error["param"]) == (1, "model")
    requests = [
        {"custom_id": "a", "body": {"model": "openai/gpt-4o-mini"}},
        {"custom_id": "b", "body": {"model": model}},
    ]
    response = await client.post("/v1/batches", json={"requests": requests}, headers=H)
    error = _error(response, 400)
    assert error["message"].startswith("requests[1]: ") and named in error["message"]


async def test_a_provider_without_credentials_is_named(
    sqlite_url: str,
    emulator: RunningEmulator,
    gw_settings: GatewaySettings,
    fast_settings: Settings,
) -> None:
    only_openai = ProviderSet(
        {"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": emulator.base_url("openai")}
    )
    engine = await Engine.open(sqlite_url, settings=fast_settings, providers=only_openai)
    app = create_app(engine, gateway_settings=gw_settings, worker=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as http:
            lines = chat_lines(1, model="xai/grok-4")
            error = await _failed(http, engine, jsonl(lines))
            assert "'xai'" in error["message"] and error["param"] == "model"
            assert (error["code"], error["line"]) == ("model_not_found", 1)
            inline = {"requests": [{"custom_id": "a", "body": {"model": "xai/grok-4"}}]}
            error = _error(await http.post("/v1/batches", json=inline, headers=H), 400)
            assert "'xai'" in error["message"] and error["param"] == "model"
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "requests"),
        ({"input_file_id": "file_x", "requests": [{"custom_id": "a", "body": {}}]}, "requests"),
        ({"input_file_id": "file_missing"}, "input_file_id"),
        ({"requests": []}, "requests"),
        ({"requests": [{"custom_id": "", "body": {}}]}, "requests[0].custom_id"),
        ({"requests": [{"custom_id": "a"}]}, "requests[0].body"),
        ({"input_file_id": "f", "completion_window": "1h"}, "completion_window"),
        ({"input_file_id": "f", "endpoint": "/v1/images"}, "endpoint"),
        ({"input_file_id": "f", "surprise": 1}, "surprise"),
        ({"input_file_id": 7}, "input_file_id"),
        ({"input_file_id": "f", "model": "openai/gpt-4o-mini"}, "model"),
        ({"requests": [{"custom_id": "a", "body": {"n": 2**70}}]}, "requests[0].body"),
        ({"input_file_id": "f", "metadata": {"k": "v" * 513}}, "metadata.k"),
        ({"input_file_id": "f", "metadata": {str(i): "v" for i in range(17)}}, "metadata"),
    ],
)
async def test_malformed_batch_bodies(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    error = _error(await client.post("/v1/batches", json=body, headers=H), 400)
    assert error["param"] == param, error


async def test_malformed_requests_of_every_other_kind(client: httpx.AsyncClient) -> None:
    not_json = await client.post(
        "/v1/batches", content=b"{oops", headers={**H, "content-type": "application/json"}
    )
    _error(not_json, 400)
    wrong_purpose = await client.post(
        "/v1/files", files={"file": ("a.jsonl", b"{}")}, data={"purpose": "fine-tune"}, headers=H
    )
    assert _error(wrong_purpose, 400)["param"] == "purpose"
    no_file = await client.post("/v1/files", data={"purpose": "batch"}, headers=H)
    assert _error(no_file, 400)["param"] == "file"
    _error(await client.get("/v1/batches", params={"limit": 0}, headers=H), 400)
    _error(await client.get("/v1/batches/ubb_nope", headers=H), 404)
    _error(await client.get("/v1/files/file-out-ubb_nope/content", headers=H), 404)
    _error(await client.get("/v1/nothing-here", headers=H), 404)
    _error(await client.post("/v1/keys", json={"name": ""}, headers=H), 400)
    _error(await client.post("/v1/keys", json={"name": "x", "max_budget": -1}, headers=H), 400)


async def test_bodies_over_the_limit_get_413(client: httpx.AsyncClient) -> None:
    big = b"x" * 1_100_000  # the fixture's limit is 1,000,000 bytes
    upload = await client.post(
        "/v1/files", files={"file": ("a.jsonl", big)}, data={"purpose": "batch"}, headers=H
    )
    assert _error(upload, 413)["code"] == "request_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit is enforced while the body streams in.
        for _ in range(12):
            yield b'{"requests": [' + b" " * 100_000

    streamed = await client.post(
        "/v1/batches", content=chunks(), headers={**H, "content-type": "application/json"}
    )
    _error(streamed, 413)
    listed = await client.get("/v1/files", headers=H)
    assert listed.json()["data"] == []
