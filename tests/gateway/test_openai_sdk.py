"""The official `openai` SDK runs the whole batch flow, unchanged, against a real gateway
server on loopback whose worker sends the requests to the provider emulators."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from openai import NotFoundError, OpenAI

from tests.gateway.conftest import MASTER, auth
from tests.gateway.server import running_gateway
from tests.integration.test_engine_mixed import MODELS, mixed_lines
from tests.support.emulated import chat_lines, provider_env
from unibatch.config import Settings
from unibatch.emulators.server import RunningEmulator
from unibatch.gateway import GatewaySettings, create_app
from unibatch.providers.registry import ProviderSet


def _write(path: Path, lines: list[dict]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def _wait(client: OpenAI, batch_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.batches.retrieve(batch_id).status
        if status in ("completed", "failed", "expired", "cancelled"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} did not finish in {timeout}s")


@pytest.fixture
def gateway_url(
    database_url: str, emulator: RunningEmulator, gw_settings: GatewaySettings
) -> object:
    settings = Settings(
        database_url=database_url, poll_schedule=(0.1,), lease_seconds=10, worker_idle=0.05
    )
    app = create_app(
        settings, gateway_settings=gw_settings, providers=ProviderSet(provider_env(emulator))
    )
    with running_gateway(app) as url:
        yield url


def test_openai_sdk_runs_the_whole_flow(gateway_url: str, tmp_path: Path) -> None:
    key = httpx.post(f"{gateway_url}/v1/keys", json={"name": "sdk"}, headers=auth(MASTER)).json()[
        "key"
    ]
    client = OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0)
    # One file, two providers: each line's body.model routes it.
    lines = chat_lines(6) + chat_lines(4, model="anthropic/claude-haiku-4-5", prefix="a")
    uploaded = client.files.create(file=_write(tmp_path / "in.jsonl", lines), purpose="batch")
    assert uploaded.purpose == "batch" and uploaded.bytes > 0
    assert client.files.retrieve(uploaded.id).filename == "in.jsonl"
    assert [f.id for f in client.files.list()] == [uploaded.id]

    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"team": "evals"},
    )
    assert batch.status == "validating" and batch.input_file_id == uploaded.id
    assert _wait(client, batch.id) == "completed"
    done = client.batches.retrieve(batch.id)
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (10, 10)
    assert done.metadata == {"team": "evals"} and done.error_file_id is None
    assert done.usage is not None and done.usage.input_tokens > 0
    assert done.output_file_id is not None

    output = client.files.content(done.output_file_id).text
    rows = [orjson.loads(line) for line in output.splitlines()]
    assert sorted(r["custom_id"] for r in rows) == sorted(line["custom_id"] for line in lines)
    assert all(r["response"]["status_code"] == 200 for r in rows)
    assert {r["response"]["body"]["object"] for r in rows} == {"chat.completion"}
    assert client.files.retrieve(done.output_file_id).bytes == len(output.encode())

    other = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert [b.id for b in client.batches.list()] == [other.id, batch.id]
    page = client.batches.list(limit=1)
    assert [b.id for b in page.data] == [other.id] and page.has_more
    assert [b.id for b in client.batches.list(limit=1, after=other.id).data] == [batch.id]
    assert client.batches.cancel(other.id).status in ("cancelling", "cancelled")
    assert _wait(client, other.id) == "cancelled"

    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(NotFoundError):
        client.files.retrieve(uploaded.id)


def test_the_readme_example_runs_as_written(
    gateway_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """The README's OpenAI SDK example, run against a live gateway: only its URL, key and
    poll pause are swapped for the test's."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### With the OpenAI SDK", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    key = httpx.post(f"{gateway_url}/v1/keys", json={"name": "docs"}, headers=auth(MASTER))
    code = (
        code.replace("http://localhost:8000/v1", f"{gateway_url}/v1")
        .replace("ubk-...", key.json()["key"])
        .replace("time.sleep(10)", "time.sleep(0.1)")
    )
    _write(tmp_path / "requests.jsonl", chat_lines(3))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    printed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert [row["custom_id"] for row in printed] == ["r-00000", "r-00001", "r-00002"]
    assert all(row["response"]["status_code"] == 200 for row in printed)


def test_one_file_mixing_every_provider_through_the_sdk(gateway_url: str, tmp_path: Path) -> None:
    """Nine providers in one uploaded file: one batch, one output file of OpenAI lines."""
    client = OpenAI(base_url=f"{gateway_url}/v1", api_key=MASTER, max_retries=0)
    lines = mixed_lines(2)
    uploaded = client.files.create(file=_write(tmp_path / "mixed.jsonl", lines), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert _wait(client, batch.id, timeout=120) == "completed"
    done = client.batches.retrieve(batch.id)
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (len(lines), len(lines))
    assert done.output_file_id is not None and done.error_file_id is None
    rows = [orjson.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(r["custom_id"] for r in rows) == sorted(line["custom_id"] for line in lines)
    assert {r["custom_id"].split("-")[0] for r in rows} == set(MODELS)
    for row in rows:
        body = row["response"]["body"]
        assert row["response"]["status_code"] == 200 and row["error"] is None
        assert body["object"] == "chat.completion"
        assert isinstance(body["choices"][0]["message"]["content"], str)
        assert body["usage"]["prompt_tokens"] > 0
