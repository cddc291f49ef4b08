"""Input the database or the JSON encoder cannot take gets a 400 naming it (a line of an
uploaded file: a failed batch whose `errors` name it), on SQLite and PostgreSQL alike
(PostgreSQL refuses NUL in text and over-long values; orjson refuses deep nesting): never
a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import MASTER, auth, create_from_file, import_error, jsonl, upload
from tests.support.emulated import chat_lines
from unibatch.engine import Engine

H = auth(MASTER)


def _error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


def _parameters(document: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(method, path template, parameter, where) of every path and query parameter."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query"):
                    yield method.upper(), path, parameter["name"], parameter["in"]


async def test_a_nul_in_any_path_or_query_parameter_is_a_400_naming_it(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    cases = list(_parameters(document))
    assert len(cases) >= 15  # every id, cursor and filter of the API
    for method, template, name, where in cases:
        path = template
        for other in ("file_id", "batch_id", "key_id", "endpoint_id"):
            value = "x%00y" if (other == name and where == "path") else "x"
            path = path.replace("{" + other + "}", value)
        query = f"?{name}=a%00" if where == "query" else ""
        response = await client.request(method, path + query, headers=H)
        error = _error(response)
        assert error["param"] == name, (method, template, name, error)
        assert "NUL" in error["message"] and error["message"].startswith(f"{name}: ")


async def test_a_nul_in_a_json_field_or_a_filename_is_a_400_naming_it(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = await client.post("/v1/keys", json={"name": "a\x00b"}, headers=H)
    assert _error(key)["param"] == "name"
    batch = await client.post("/v1/batches", json={"input_file_id": "file\x00"}, headers=H)
    assert _error(batch)["param"] == "input_file_id"
    for line in (
        {"custom_id": "a\x00", "body": {"model": "openai/gpt-4o-mini"}},
        {"custom_id": "a", "body": {"model": "openai/gpt-4o\x00"}},
    ):
        inline = await client.post("/v1/batches", json={"requests": [line]}, headers=H)
        assert "requests[0]: " in _error(inline)["message"]
        assert "contains a NUL character" in _error(inline)["message"]
        # A file's line fails its batch, naming the line.
        from_file = await create_from_file(client, MASTER, [line])
        error = await import_error(client, engine, from_file)
        assert error["line"] == 1 and "contains a NUL character" in error["message"]
    # A raw multipart body: the filename holds the NUL byte itself, not an escape.
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="a\x00b.jsonl"\r\n\r\n{{}}\r\n--{boundary}--\r\n'
    ).encode()
    headers = {**H, "content-type": f"multipart/form-data; boundary={boundary}"}
    named = _error(await client.post("/v1/files", content=body, headers=headers))
    assert named["param"] == "file" and "NUL" in named["message"]


async def test_a_nul_inside_a_prompt_is_stored_and_sent_as_is(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    """Request bodies are stored as bytes, so a NUL in a prompt needs no refusal."""
    lines = chat_lines(1)
    lines[0]["body"]["messages"][0]["content"] = "before\x00after"
    created = await client.post(
        "/v1/batches", json={"requests": lines, "metadata": {"note": "x\x00y"}}, headers=H
    )
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    assert created.json()["metadata"] == {"note": "x\x00y"}
    await engine.wait(batch_id, interval=0.05, timeout=30)
    results = (await client.get(f"/v1/batches/{batch_id}/results", headers=H)).json()["data"]
    assert [r["status"] for r in results] == ["succeeded"]
    jobs = await engine.store.jobs_of(batch_id)
    async for chunk in engine.store.job_requests(jobs[0].id, 10):
        assert b"before\\u0000after" in bytes(chunk[0][2])


async def test_over_long_custom_ids_and_models_in_files_name_line_field_and_limit(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    lines = chat_lines(3)
    lines[1]["custom_id"] = "c" * 513
    error = await import_error(client, engine, await create_from_file(client, MASTER, lines))
    assert error["message"] == "custom_id is 513 characters long; the limit is 512"
    assert (error["line"], error["param"]) == (2, "custom_id")
    lines = chat_lines(3, model="openai/" + "m" * 129)
    error = await import_error(client, engine, await create_from_file(client, MASTER, lines))
    assert error["message"] == "body.model is 129 characters long; the limit is 128"
    assert error["line"] == 1
    at_limits = chat_lines(1, model="openai/" + "m" * 128)
    at_limits[0]["custom_id"] = "c" * 512
    assert (await create_from_file(client, MASTER, at_limits)).status_code == 200


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [130, 300, 900])
async def test_deeply_nested_bodies_are_refused_as_nested_too_deeply(
    client: httpx.AsyncClient, engine: Engine, depth: int
) -> None:
    body = '{"model": "openai/gpt-4o-mini", "x": ' + _deep(depth) + "}"
    line = '{"custom_id": "a", "body": ' + body + "}"
    inline = await client.post(
        "/v1/batches",
        content=('{"requests": [' + line + "]}").encode(),
        headers={**H, "content-type": "application/json"},
    )
    assert "nested too deeply" in _error(inline)["message"]
    good = jsonl(chat_lines(1))
    file = await upload(client, MASTER, good + line.encode() + b"\n")
    created = await client.post("/v1/batches", json={"input_file_id": file["id"]}, headers=H)
    error = await import_error(client, engine, created)
    assert error["line"] == 2 and error["message"].startswith("body is nested too deeply")


async def test_a_body_too_deep_to_parse_is_named_so(client: httpx.AsyncClient) -> None:
    body = ('{"requests": [{"custom_id": "a", "body": {"x": ' + _deep(50_000) + "}}]}").encode()
    for path in ("/v1/batches", "/v1/keys"):
        response = await client.post(
            path, content=body, headers={**H, "content-type": "application/json"}
        )
        assert "nested too deeply" in _error(response)["message"]
