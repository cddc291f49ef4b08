"""The Anthropic Message Batches emulator, driven over loopback HTTP by the official SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types.messages import MessageBatch

from tests.support.clock import ShiftedClock
from unibatch.emulators import RunningEmulator
from unibatch.emulators.anthropic.ingest import iter_requests, store_requests

MODEL = "claude-haiku-4-5"


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[anthropic.Anthropic]:
    sdk = anthropic.Anthropic(
        base_url=emulator.base_url("anthropic"), api_key="test", max_retries=0
    )
    with sdk:
        yield sdk


def request(custom_id: str, text: str = "hello", **params: Any) -> dict[str, Any]:
    body = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "params": {**body, **params}}


def requests(n: int, prefix: str = "req-") -> list[dict[str, Any]]:
    return [request(f"{prefix}{i}", f"question {i}") for i in range(n)]


def finish(client: anthropic.Anthropic, batch_id: str, timeout: float = 15) -> MessageBatch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == "ended":
            return batch
        assert time.monotonic() < deadline, f"batch stuck in {batch.processing_status}"
        time.sleep(0.02)


def config(emulator: RunningEmulator, **knobs: Any) -> None:
    httpx.post(f"{emulator.base_url('anthropic')}/_emulator/config", json=knobs).raise_for_status()


# -- lifecycle ---------------------------------------------------------------------------


def test_create_retrieve_and_results(client: anthropic.Anthropic) -> None:
    created = client.messages.batches.create(requests=requests(12))  # type: ignore[arg-type]
    assert created.id.startswith("msgbatch_")
    assert created._request_id is not None and created._request_id.startswith("req_")
    assert created.type == "message_batch"
    assert created.processing_status == "in_progress"
    assert created.results_url is None and created.ended_at is None
    # The documented contract: everything stays in `processing` until the batch ends.
    assert created.request_counts.processing == 12
    assert created.request_counts.succeeded == 0
    assert (created.expires_at - created.created_at).total_seconds() > 0

    batch = finish(client, created.id)
    assert batch.ended_at is not None and batch.ended_at >= batch.created_at
    assert batch.request_counts.succeeded == 12 and batch.request_counts.processing == 0
    assert batch.results_url is not None
    assert batch.results_url.endswith(f"/anthropic/v1/messages/batches/{batch.id}/results")

    rows = list(client.messages.batches.results(batch.id))
    ids = [r.custom_id for r in rows]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(12))
    assert ids != [f"req-{i}" for i in range(12)], "results should come out of order"
    first = rows[0].result
    assert first.type == "succeeded"
    assert first.message.role == "assistant" and first.message.model == MODEL
    assert first.message.content[0].type == "text"
    assert first.message.usage.input_tokens > 0 and first.message.usage.output_tokens > 0
    assert first.message.usage.service_tier == "batch"


def test_results_are_identical_on_every_download(client: anthropic.Anthropic) -> None:
    batch = client.messages.batches.create(requests=requests(20))  # type: ignore[arg-type]
    finish(client, batch.id)
    one = [r.model_dump() for r in client.messages.batches.results(batch.id)]
    two = [r.model_dump() for r in client.messages.batches.results(batch.id)]
    assert one == two


def test_results_before_the_end_are_404(
    client: anthropic.Anthropic, emulator: RunningEmulator
) -> None:
    config(emulator, in_progress_seconds=200.0)
    batch = client.messages.batches.create(requests=requests(2))  # type: ignore[arg-type]
    url = f"{emulator.base_url('anthropic')}/v1/messages/batches/{batch.id}/results"
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    response = httpx.get(url, headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == (
        f"Message Batch {batch.id} has no available results."
    )
    with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
        client.messages.batches.results(batch.id)


def test_cancel_goes_through_canceling_to_ended_with_canceled_rows(
    client: anthropic.Anthropic, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    config(emulator, in_progress_seconds=2000.0, cancelling_seconds=10.0)  # 100 s, then 0.5 s
    batch = client.messages.batches.create(requests=requests(30))  # type: ignore[arg-type]
    emulator_clock.advance(50.0)  # half-way through processing
    cancelling = client.messages.batches.cancel(batch.id)
    assert cancelling.processing_status == "canceling"
    assert cancelling.cancel_initiated_at is not None
    emulator_clock.advance(0.5)  # the requests in flight finish
    ended = finish(client, batch.id)
    counts = ended.request_counts
    assert counts.canceled > 0 and counts.succeeded > 0
    assert counts.canceled + counts.succeeded == 30
    kinds = [r.result.type for r in client.messages.batches.results(batch.id)]
    assert kinds.count("canceled") == counts.canceled
    with pytest.raises(anthropic.BadRequestError):
        client.messages.batches.cancel(batch.id)


def test_expiry_ends_with_expired_rows(
    client: anthropic.Anthropic, emulator: RunningEmulator
) -> None:
    config(emulator, in_progress_seconds=40.0, completion_window_seconds=10.0)
    batch = client.messages.batches.create(requests=requests(20))  # type: ignore[arg-type]
    ended = finish(client, batch.id)
    assert ended.request_counts.expired > 0
    assert ended.request_counts.expired + ended.request_counts.succeeded == 20
    assert ended.ended_at == ended.expires_at


def test_failures_and_bad_params_are_errored_rows(
    client: anthropic.Anthropic, emulator: RunningEmulator
) -> None:
    config(emulator, failure_rate=0.5)
    bad = [
        {"custom_id": "no-max", "params": {"model": MODEL, "messages": [{"role": "user"}]}},
        request("system-role", messages=[{"role": "system", "content": "x"}]),
        request("extra", response_format={"type": "json_object"}),
    ]
    batch = client.messages.batches.create(requests=requests(20) + bad)  # type: ignore[arg-type]
    ended = finish(client, batch.id)
    assert ended.request_counts.errored >= 3
    assert ended.request_counts.errored + ended.request_counts.succeeded == 23
    rows = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    messages = {}
    for custom_id in ("no-max", "system-role", "extra"):
        result = rows[custom_id]
        assert result.type == "errored"
        assert result.error.error.type == "invalid_request_error"
        messages[custom_id] = result.error.error.message
    assert messages == {
        "no-max": "max_tokens: Field required",
        "system-role": "messages.0.role: Input should be 'user' or 'assistant'",
        "extra": "response_format: Extra inputs are not permitted",
    }
    emulated = [r for r in rows.values() if r.type == "errored"]
    assert {r.error.error.type for r in emulated} > {"invalid_request_error"}


def test_forced_tool_answers_with_tool_use(client: anthropic.Anthropic) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    tools = [{"name": "count", "input_schema": schema}]
    item = request("t", tools=tools, tool_choice={"type": "tool", "name": "count"})
    batch = client.messages.batches.create(requests=[item])  # type: ignore[list-item]
    finish(client, batch.id)
    (row,) = list(client.messages.batches.results(batch.id))
    assert row.result.type == "succeeded"
    block = row.result.message.content[0]
    assert block.type == "tool_use" and block.name == "count" and block.input == {"n": 0}
    assert row.result.message.stop_reason == "tool_use"


# -- list and delete ---------------------------------------------------------------------


def test_list_pages_newest_first_both_ways(client: anthropic.Anthropic) -> None:
    made = [client.messages.batches.create(requests=requests(1)).id for _ in range(5)]  # type: ignore[arg-type]
    newest_first = list(reversed(made))
    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert page.has_more and page.first_id == newest_first[0] and page.last_id == newest_first[1]
    assert [b.id for b in client.messages.batches.list(limit=2)] == newest_first
    older = client.messages.batches.list(limit=2, after_id=newest_first[1])
    assert [b.id for b in older.data] == newest_first[2:4]
    newer = client.messages.batches.list(limit=2, before_id=newest_first[3])
    assert [b.id for b in newer.data] == newest_first[1:3] and newer.has_more
    raw = client.messages.batches.with_raw_response.list(limit=1).http_response.json()
    assert set(raw) == {"data", "has_more", "first_id", "last_id"}


def test_delete_only_ended_batches(client: anthropic.Anthropic, emulator: RunningEmulator) -> None:
    config(emulator, in_progress_seconds=2.0)  # 0.1 s
    batch = client.messages.batches.create(requests=requests(2))  # type: ignore[arg-type]
    with pytest.raises(anthropic.BadRequestError, match="cannot be deleted"):
        client.messages.batches.delete(batch.id)
    finish(client, batch.id)
    deleted = client.messages.batches.delete(batch.id)
    assert (deleted.id, deleted.type) == (batch.id, "message_batch_deleted")
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(batch.id)


# -- create-time validation, auth, faults ------------------------------------------------


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([], "requests: List should have at least 1 item after validation, not 0"),
        (
            [request("dup"), request("dup")],
            "requests: custom_id's must be unique within a batch. Duplicate custom_id found: dup",
        ),
        ([{"params": {}}], "requests.0.custom_id: Field required"),
        ([request("x" * 65)], "requests.0.custom_id: String should have at most 64 characters"),
        (
            [request("ok"), request("has space")],
            "requests.1.custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'",
        ),
    ],
)
def test_custom_id_problems_are_synchronous_400s(
    client: anthropic.Anthropic, emulator: RunningEmulator, items: list[Any], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.batches.create(requests=items)
    assert info.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": info.value.request_id,
    }
    assert not emulator.emulators["anthropic"].batches  # type: ignore[attr-defined]


def test_too_many_requests_and_too_many_bytes(
    client: anthropic.Anthropic, emulator: RunningEmulator
) -> None:
    config(emulator, max_requests_per_batch=3)
    with pytest.raises(anthropic.BadRequestError, match="at most 3 items"):
        client.messages.batches.create(requests=requests(4))  # type: ignore[arg-type]
    config(emulator, max_requests_per_batch=None, max_file_bytes=1000)
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.batches.create(requests=requests(20))  # type: ignore[arg-type]
    assert info.value.status_code == 413
    assert info.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_missing_key_is_401(emulator: RunningEmulator) -> None:
    url = f"{emulator.base_url('anthropic')}/v1/messages/batches"
    response = httpx.get(url, headers={"anthropic-version": "2023-06-01"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert response.headers["request-id"].startswith("req_")
    response = httpx.get(url, headers={"x-api-key": "k"})
    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


def test_unknown_batch_is_404(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError, match="msgbatch_nope not found"):
        client.messages.batches.retrieve("msgbatch_nope")


def test_faults_answer_429_with_retry_after_then_recover(
    client: anthropic.Anthropic, emulator: RunningEmulator
) -> None:
    emulator.emulators["anthropic"].inject_faults(1, status=429, retry_after=2)
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.batches.list()
    assert info.value.response.headers["retry-after"] == "2"
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    emulator.emulators["anthropic"].inject_faults(1, status=529)
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.batches.list()
    assert overloaded.value.status_code == 529
    assert client.messages.batches.list().data == []


def test_sdk_retries_through_a_fault(emulator: RunningEmulator) -> None:
    emulator.emulators["anthropic"].inject_faults(2, status=429, retry_after=0)
    base = emulator.base_url("anthropic")
    with anthropic.Anthropic(base_url=base, api_key="k", max_retries=3) as sdk:
        batch = sdk.messages.batches.create(requests=requests(1))  # type: ignore[arg-type]
    assert batch.processing_status == "in_progress"
    assert len(emulator.emulators["anthropic"].batches) == 1  # type: ignore[attr-defined]


def test_legacy_beta_form_works(client: anthropic.Anthropic) -> None:
    batch = client.beta.messages.batches.create(requests=requests(1))  # type: ignore[arg-type]
    assert client.beta.messages.batches.retrieve(batch.id).id == batch.id


# -- the create body is read one request at a time ---------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
@pytest.mark.parametrize("indent", [None, 3])
def test_create_body_streams_across_chunk_boundaries(
    tmp_path: Path, chunk: int, indent: int | None
) -> None:
    items = [request(f"c{i}", "é" * i, temperature=0.5) for i in range(30)]
    raw = tmp_path / "body.json"
    raw.write_text(json.dumps({"requests": items}, indent=indent))
    assert list(iter_requests(raw, chunk)) == items


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ('{"requests": [{"custom_id": "a", "params": {}}], "other": 1}', 1),
        ('{"requests": [}', "Invalid JSON body"),
        ('{"other": 1}', "requests: Field required"),
        ('{"requests": 5}', "requests: Input should be a valid list"),
        ('{"requests": []}', "requests: List should have at least 1 item"),
    ],
)
def test_create_body_shapes(tmp_path: Path, text: str, answer: int | str) -> None:
    raw = tmp_path / "body.json"
    raw.write_text(text)
    out = store_requests(raw, tmp_path / "requests.jsonl", 10)
    assert out == answer if isinstance(answer, int) else str(out).startswith(answer)
    assert not raw.exists()


def test_create_and_results_memory_stays_flat(emulator: RunningEmulator) -> None:
    base = f"{emulator.base_url('anthropic')}/v1/messages/batches"
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    filler = "x" * 1000

    def body() -> Iterator[bytes]:
        yield b'{"requests": ['
        for i in range(10_000):
            yield (b"," if i else b"") + json.dumps(request(f"r{i}", filler)).encode()
        yield b"]}"

    size = sum(len(piece) for piece in body())
    assert size > 10_000_000
    tracemalloc.start()
    try:
        created = httpx.post(base, content=body(), headers=headers, timeout=300)
        _, create_peak = tracemalloc.get_traced_memory()
        # Untraced while it waits: tracing slows the emulator (same process) several-fold,
        # and on a busy machine its answers then outlast any client timeout.
        tracemalloc.stop()
        assert created.status_code == 200, created.text
        batch = created.json()
        deadline = time.monotonic() + 600
        while batch["processing_status"] != "ended":
            assert time.monotonic() < deadline, "the batch never ended"
            time.sleep(0.05)
            batch = httpx.get(f"{base}/{batch['id']}", headers=headers, timeout=60).json()
        tracemalloc.start()
        received = 0
        with httpx.stream("GET", batch["results_url"], headers=headers, timeout=300) as response:
            for line in response.iter_lines():
                received += bool(line)
        _, results_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch["request_counts"]["succeeded"] == 10_000 and received == 10_000
    assert create_peak < size / 4, f"create peak {create_peak} for a {size}-byte body"
    assert results_peak < size / 4, f"results peak {results_peak}"


def test_serve_prints_the_anthropic_base_url(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "unibatch", "emulate", "--port", "0"]
    command += ["--data-dir", str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            name, url = "", ""
            while name != "ANTHROPIC_BASE_URL":  # one line per provider, in mount order
                name, _, url = proc.stdout.readline().strip().partition("=")
                assert name, "the server printed no ANTHROPIC_BASE_URL"
            assert url.endswith("/anthropic") and not url.endswith(":0/anthropic")
            with anthropic.Anthropic(base_url=url, api_key="k", max_retries=0) as sdk:
                assert sdk.messages.batches.list().data == []
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0
