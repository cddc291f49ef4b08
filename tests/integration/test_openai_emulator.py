"""The OpenAI Batch API emulator, driven over real loopback HTTP by the official SDK."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import Batch

from tests.support.clock import ShiftedClock
from unibatch.emulators import RunningEmulator
from unibatch.estimate.encodings import get_encoding

CHAT: Final = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


# -- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[OpenAI]:
    with OpenAI(base_url=emulator.base_url("openai"), api_key="test", max_retries=0) as sdk:
        yield sdk


def chat_line(custom_id: str, text: str = "hello", model: str = "gpt-4o-mini", **body: Any) -> str:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]
    payload = {"model": model, "messages": messages, **body}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": CHAT, "body": payload})


def chat_lines(n: int, prefix: str = "req-") -> list[str]:
    return [chat_line(f"{prefix}{i}", f"question number {i}") for i in range(n)]


def upload(client: OpenAI, lines: list[str], purpose: str = "batch") -> str:
    data = ("\n".join(lines) + "\n").encode()
    return client.files.create(file=("input.jsonl", io.BytesIO(data)), purpose=purpose).id  # type: ignore[arg-type]


def submit(client: OpenAI, lines: list[str], endpoint: str = CHAT, **kwargs: Any) -> Batch:
    file_id = upload(client, lines)
    return client.batches.create(
        input_file_id=file_id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        **kwargs,
    )


def wait_for(
    client: OpenAI, batch_id: str, done: Callable[[Batch], bool], timeout: float = 15
) -> tuple[Batch, list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if not seen or seen[-1] != batch.status:
            seen.append(batch.status)
        if done(batch):
            return batch, seen
        assert time.monotonic() < deadline, f"batch stuck in {seen}"
        time.sleep(0.01)


def finish(client: OpenAI, batch_id: str, timeout: float = 15) -> tuple[Batch, list[str]]:
    return wait_for(client, batch_id, lambda b: b.status in TERMINAL, timeout)


def rows(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def control(emulator: RunningEmulator, method: str, name: str, body: Any = None) -> httpx.Response:
    url = f"{emulator.base_url('openai')}/_emulator/{name}"
    return httpx.request(method, url, json=body)


# -- the happy path ----------------------------------------------------------------------


def test_batch_runs_through_every_status_to_completed(client: OpenAI) -> None:
    lines = chat_lines(25)
    created = submit(client, lines, metadata={"job": "happy"})
    assert created.status == "validating"
    assert created.id.startswith("batch_")
    assert created.request_counts is not None and created.request_counts.total == 0

    batch, seen = finish(client, created.id)

    assert seen[-1] == "completed"
    order = ["validating", "in_progress", "finalizing", "completed"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (25, 25)
    assert batch.request_counts.failed == 0
    assert batch.error_file_id is None
    assert batch.model == "gpt-4o-mini"
    assert batch.metadata == {"job": "happy"}
    assert batch.in_progress_at and batch.finalizing_at and batch.completed_at
    assert batch.created_at <= batch.in_progress_at <= batch.finalizing_at <= batch.completed_at
    assert batch.expires_at is not None and batch.expires_at > batch.created_at

    assert batch.output_file_id is not None
    meta = client.files.retrieve(batch.output_file_id)
    assert meta.purpose == "batch_output" and meta.id.startswith("file-")
    content = client.files.content(batch.output_file_id).content
    assert meta.bytes == len(content)
    assert client.files.content(batch.output_file_id).content == content  # deterministic

    out = rows(client, batch.output_file_id)
    ids = [row["custom_id"] for row in out]
    assert sorted(ids) == sorted(f"req-{i}" for i in range(25))
    assert ids != [f"req-{i}" for i in range(25)], "rows should not come back in input order"
    usage = {"input_tokens": 0, "output_tokens": 0}
    for row in out:
        assert row["id"].startswith("batch_req_") and row["error"] is None
        response = row["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        body = response["body"]
        assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
        assert body["model"] == "gpt-4o-mini"
        choice = body["choices"][0]
        assert choice["finish_reason"] == "stop"
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"].startswith("Echo: ")
        u = body["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0
        assert "cached_tokens" in u["prompt_tokens_details"]
        assert "reasoning_tokens" in u["completion_tokens_details"]
        usage["input_tokens"] += u["prompt_tokens"]
        usage["output_tokens"] += u["completion_tokens"]
    assert batch.usage is not None
    assert batch.usage.input_tokens == usage["input_tokens"]
    assert batch.usage.output_tokens == usage["output_tokens"]
    assert batch.usage.total_tokens == sum(usage.values())


def test_same_request_gives_the_same_answer(client: OpenAI) -> None:
    first = finish(client, submit(client, [chat_line("a", "same text")]).id)[0]
    second = finish(client, submit(client, [chat_line("b", "same text")]).id)[0]
    (row_a,) = rows(client, first.output_file_id)
    (row_b,) = rows(client, second.output_file_id)
    content = [r["response"]["body"]["choices"][0]["message"]["content"] for r in (row_a, row_b)]
    assert content[0] == content[1]


def test_max_tokens_is_respected(client: OpenAI) -> None:
    batch = finish(client, submit(client, [chat_line("a", max_tokens=2)]).id)[0]
    (row,) = rows(client, batch.output_file_id)
    body = row["response"]["body"]
    assert body["usage"]["completion_tokens"] == 2
    assert body["choices"][0]["finish_reason"] == "length"


def _line(endpoint: str, custom_id: str, body: dict[str, Any]) -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body})


@pytest.mark.parametrize(
    ("endpoint", "body", "check"),
    [
        (
            "/v1/embeddings",
            {"model": "text-embedding-3-small", "input": ["one", "two"]},
            lambda b: (
                b["object"] == "list"
                and [d["index"] for d in b["data"]] == [0, 1]
                and all(d["object"] == "embedding" and len(d["embedding"]) == 8 for d in b["data"])
                and b["usage"]["prompt_tokens"] == b["usage"]["total_tokens"] > 0
            ),
        ),
        (
            "/v1/responses",
            {"model": "gpt-5-nano", "input": "Say hi", "instructions": "short"},
            lambda b: (
                b["object"] == "response"
                and b["status"] == "completed"
                and b["output"][0]["type"] == "message"
                and b["output"][0]["role"] == "assistant"
                and b["output"][0]["content"][0]["type"] == "output_text"
                and b["output"][0]["content"][0]["text"].startswith("Echo: ")
                and b["usage"]["total_tokens"]
                == b["usage"]["input_tokens"] + b["usage"]["output_tokens"]
                and "cached_tokens" in b["usage"]["input_tokens_details"]
                and "reasoning_tokens" in b["usage"]["output_tokens_details"]
            ),
        ),
        (
            "/v1/completions",
            {"model": "gpt-3.5-turbo-instruct", "prompt": "Once upon"},
            lambda b: b["object"] == "text_completion" and b["choices"][0]["text"],
        ),
    ],
)
def test_each_endpoint_answers_its_own_shape(
    client: OpenAI, endpoint: str, body: dict[str, Any], check: Callable[[dict[str, Any]], bool]
) -> None:
    lines = [_line(endpoint, f"r{i}", body) for i in range(3)]
    batch = finish(client, submit(client, lines, endpoint=endpoint).id)[0]
    assert batch.status == "completed"
    out = rows(client, batch.output_file_id)
    assert len(out) == 3
    assert all(check(row["response"]["body"]) for row in out)
    assert batch.usage is not None and batch.usage.input_tokens > 0


# -- files -------------------------------------------------------------------------------


def test_files_upload_list_download_delete(client: OpenAI) -> None:
    payload = "\n".join(chat_lines(3)) + "\n"
    first = client.files.create(file=("a.jsonl", io.BytesIO(payload.encode())), purpose="batch")
    second = client.files.create(file=("b.txt", io.BytesIO(b"notes")), purpose="user_data")

    assert first.object == "file" and first.status == "processed"
    assert first.bytes == len(payload.encode()) and first.filename == "a.jsonl"
    assert first.expires_at == first.created_at + 30 * 86400
    assert second.purpose == "user_data" and second.expires_at is None
    assert client.files.content(first.id).text == payload
    assert [f.id for f in client.files.list()] == [second.id, first.id]
    assert [f.id for f in client.files.list(purpose="batch")] == [first.id]

    deleted = client.files.delete(first.id)
    assert (deleted.id, deleted.deleted) == (first.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(first.id)
    assert [f.id for f in client.files.list()] == [second.id]


def test_upload_without_purpose_is_rejected(emulator: RunningEmulator) -> None:
    response = httpx.post(
        f"{emulator.base_url('openai')}/files",
        headers={"Authorization": "Bearer k"},
        files={"file": ("x.jsonl", b"{}")},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "purpose"


def test_deleting_the_input_file_keeps_the_batch_working(client: OpenAI) -> None:
    batch = submit(client, chat_lines(4))
    client.files.delete(batch.input_file_id)
    done = finish(client, batch.id)[0]
    assert done.status == "completed"
    assert len(rows(client, done.output_file_id)) == 4


# -- listing -----------------------------------------------------------------------------


def test_batches_list_newest_first_with_cursor_paging(client: OpenAI) -> None:
    created = [submit(client, chat_lines(1)).id for _ in range(3)]
    newest_first = created[::-1]

    page = client.batches.list(limit=1)
    assert [b.id for b in page.data] == newest_first[:1]
    assert page.has_more is True
    collected = [b.id for b in page.data]
    while page.has_more:
        page = client.batches.list(limit=1, after=collected[-1])
        collected += [b.id for b in page.data]
    assert collected == newest_first
    assert [b.id for b in client.batches.list(limit=1)] == newest_first  # SDK auto-paging

    raw = client.batches.with_raw_response.list(limit=2).http_response.json()
    assert raw["object"] == "list" and raw["has_more"] is True
    assert (raw["first_id"], raw["last_id"]) == (newest_first[0], newest_first[1])

    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=101)


# -- cancel ------------------------------------------------------------------------------


def test_cancel_keeps_finished_rows_and_marks_the_rest_cancelled(
    emulator: RunningEmulator, emulator_clock: ShiftedClock, client: OpenAI
) -> None:
    emulator.config.update({"in_progress_seconds": 2000, "cancelling_seconds": 10})  # 100, 0.5 s
    batch = submit(client, chat_lines(40))
    emulator_clock.advance(25.0)  # a quarter of the requests done, the rest held
    wait_for(
        client, batch.id, lambda b: b.request_counts is not None and b.request_counts.completed >= 5
    )

    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    assert client.batches.cancel(batch.id).status == "cancelling"  # idempotent while draining

    done, seen = finish(client, batch.id)
    assert seen[-1] == "cancelled" and done.cancelled_at is not None
    assert done.completed_at is None
    out = rows(client, done.output_file_id)
    errors = rows(client, done.error_file_id)
    assert len(out) >= 5 and errors
    assert sorted(r["custom_id"] for r in out + errors) == sorted(f"req-{i}" for i in range(40))
    for row in errors:
        assert row["response"] is None
        assert row["error"] == {
            "code": "batch_cancelled",
            "message": "This request was not executed because the batch was cancelled.",
        }
    # The real API resets the counters on cancel; results come from the files.
    assert done.request_counts is not None and done.request_counts.total == 40
    assert done.usage is not None and done.usage.input_tokens > 0

    with pytest.raises(openai.BadRequestError) as excinfo:
        client.batches.cancel(batch.id)
    assert excinfo.value.status_code == 400
    assert excinfo.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_cancel_while_validating_runs_nothing(emulator: RunningEmulator, client: OpenAI) -> None:
    emulator.config.update({"validating_seconds": 2000})  # scaled: 100 s, longer than the test
    batch = submit(client, chat_lines(3))
    assert client.batches.cancel(batch.id).status == "cancelling"
    done = finish(client, batch.id)[0]
    assert done.status == "cancelled" and done.in_progress_at is None
    assert done.output_file_id is None
    assert [r["error"]["code"] for r in rows(client, done.error_file_id)] == ["batch_cancelled"] * 3


# -- validation --------------------------------------------------------------------------

_GOOD = chat_line("ok-1")


@pytest.mark.parametrize(
    ("lines", "code", "param", "line"),
    [
        ([_GOOD, "{not json"], "invalid_json_line", None, 2),
        (
            [_GOOD, _GOOD.replace("ok-1", "ok-2"), json.dumps({"method": "POST", "url": CHAT})],
            "missing_required_parameter",
            "custom_id",
            3,
        ),
        ([_GOOD, _GOOD], "duplicate_custom_id", "custom_id", 2),
        ([_GOOD, chat_line("x", model="gpt-4o")], "mismatched_model", "body.model", 2),
        ([_GOOD.replace(CHAT, "/v1/embeddings")], "invalid_url", "url", 1),
        ([_GOOD, chat_line("s", stream=True)], "streaming_unsupported", "body.stream", 2),
        (
            [json.dumps({"custom_id": "m", "method": "POST", "url": CHAT, "body": {}})],
            "invalid_request",
            "body.model",
            1,
        ),
        (["", "  "], "empty_file", None, None),
    ],
)
def test_invalid_input_fails_the_batch_at_the_first_bad_line(
    client: OpenAI, lines: list[str], code: str, param: str | None, line: int | None
) -> None:
    batch = finish(client, submit(client, lines).id)[0]
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.in_progress_at is None
    assert batch.errors is not None and batch.errors.data is not None
    (error,) = batch.errors.data
    assert (error.code, error.param, error.line) == (code, param, line)
    assert error.message
    assert batch.request_counts is not None
    assert batch.request_counts.model_dump() == {"total": 0, "completed": 0, "failed": 0}
    assert batch.output_file_id is None and batch.error_file_id is None


def test_unknown_or_non_batch_input_file_fails_validation(client: OpenAI) -> None:
    other = upload(client, chat_lines(1), purpose="user_data")
    for file_id in ("file-doesnotexist", other):
        created = client.batches.create(
            input_file_id=file_id, endpoint=CHAT, completion_window="24h"
        )
        batch = finish(client, created.id)[0]
        assert batch.status == "failed"
        assert batch.errors is not None and batch.errors.data is not None
        assert (batch.errors.data[0].code, batch.errors.data[0].param) == (
            "invalid_request",
            "file_id",
        )


def test_more_requests_than_the_limit_fail(emulator: RunningEmulator, client: OpenAI) -> None:
    emulator.config.update({"max_requests_per_batch": 3})
    batch = finish(client, submit(client, chat_lines(4)).id)[0]
    assert batch.errors is not None and batch.errors.data is not None
    assert batch.errors.data[0].code == "too_many_tasks"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"completion_window": "48h"}, "completion_window"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"endpoint": "/v1/nope"}, "endpoint"),
    ],
)
def test_bad_create_parameters_answer_400(
    client: OpenAI, change: dict[str, Any], param: str
) -> None:
    params: dict[str, Any] = {
        "input_file_id": upload(client, chat_lines(1)),
        "endpoint": CHAT,
        "completion_window": "24h",
        **change,
    }
    with pytest.raises(openai.BadRequestError) as excinfo:
        client.batches.create(**params)
    assert excinfo.value.param == param


# -- per-request failures and expiry -----------------------------------------------------


def test_failure_rate_writes_http_errors_to_the_error_file(
    emulator: RunningEmulator, client: OpenAI
) -> None:
    emulator.config.update({"failure_rate": 0.3, "seed": 7})
    batch = finish(client, submit(client, chat_lines(60)).id)[0]
    assert batch.status == "completed"
    out, errors = rows(client, batch.output_file_id), rows(client, batch.error_file_id)
    assert out and errors
    assert batch.request_counts is not None
    assert batch.request_counts.failed == len(errors)
    assert batch.request_counts.completed == len(out)
    assert sorted(r["custom_id"] for r in out + errors) == sorted(f"req-{i}" for i in range(60))
    for row in errors:
        assert row["error"] is None
        response = row["response"]
        assert response["status_code"] in (400, 500)
        assert set(response["body"]["error"]) == {"message", "type", "param", "code"}
    assert batch.usage is not None
    assert batch.usage.input_tokens == sum(
        r["response"]["body"]["usage"]["prompt_tokens"] for r in out
    )

    again = finish(client, submit(client, chat_lines(60)).id)[0]
    assert {r["custom_id"] for r in rows(client, again.error_file_id)} == {
        r["custom_id"] for r in errors
    }


def test_all_failed_batch_completes_without_output_file(
    emulator: RunningEmulator, client: OpenAI
) -> None:
    emulator.config.update({"failure_rate": 1.0})
    batch = finish(client, submit(client, chat_lines(3)).id)[0]
    assert batch.status == "completed" and batch.output_file_id is None
    assert len(rows(client, batch.error_file_id)) == 3


def test_expiry_keeps_finished_rows_and_expires_the_rest(
    emulator: RunningEmulator, client: OpenAI
) -> None:
    # in_progress would take 1 s but the window closes 0.5 s after creation.
    emulator.config.update({"in_progress_seconds": 20, "completion_window_seconds": 10})
    batch, seen = finish(client, submit(client, chat_lines(30)).id)
    assert seen[-1] == "expired" and "in_progress" in seen
    assert batch.expired_at is not None and batch.completed_at is None
    assert batch.expires_at is not None and batch.expires_at - batch.created_at <= 1
    out, errors = rows(client, batch.output_file_id), rows(client, batch.error_file_id)
    assert out and errors
    assert sorted(r["custom_id"] for r in out + errors) == sorted(f"req-{i}" for i in range(30))
    for row in errors:
        assert row["response"] is None
        assert row["error"] == {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
    assert batch.request_counts is not None
    assert batch.request_counts.completed + batch.request_counts.failed == 30


# -- wire-level errors and faults --------------------------------------------------------


def test_missing_or_empty_key_is_401(emulator: RunningEmulator) -> None:
    url = f"{emulator.base_url('openai')}/batches"
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"}):
        response = httpx.get(url, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert (error["param"], error["code"]) == (None, "invalid_api_key")
        assert error["message"]


def test_unknown_batch_is_404_with_the_real_message(
    emulator: RunningEmulator, client: OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    response = httpx.get(
        f"{emulator.base_url('openai')}/batches/batch_nope", headers={"Authorization": "Bearer k"}
    )
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "No batch found with id 'batch_nope'",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    unknown = httpx.get(
        f"{emulator.base_url('openai')}/nowhere", headers={"Authorization": "Bearer k"}
    )
    assert unknown.status_code == 404 and "Invalid URL" in unknown.json()["error"]["message"]


def test_injected_429_storm_carries_retry_after(emulator: RunningEmulator, client: OpenAI) -> None:
    emulator.openai.inject_faults(1, retry_after=1)
    with pytest.raises(openai.RateLimitError) as excinfo:
        client.batches.list()
    assert excinfo.value.response.headers["retry-after"] == "1"
    assert excinfo.value.code == "rate_limit_exceeded"
    client.batches.list()  # the storm is over

    assert control(emulator, "POST", "faults", {"count": 2, "retry_after": 0.01}).json() == {
        "pending": 2
    }
    before = emulator.openai.requests_seen["GET /batches"]
    retrying = client.with_options(max_retries=3)
    retrying.batches.list()
    assert emulator.openai.requests_seen["GET /batches"] - before == 3


def test_fault_rate_fails_api_calls_but_never_control_routes(
    emulator: RunningEmulator, client: OpenAI
) -> None:
    assert control(emulator, "POST", "config", {"fault_rate": 1.0, "fault_status": 503}).is_success
    with pytest.raises(openai.InternalServerError) as excinfo:
        client.files.list()
    assert excinfo.value.status_code == 503
    assert control(emulator, "GET", "state").status_code == 200


def test_slow_seconds_delays_every_answer(emulator: RunningEmulator, client: OpenAI) -> None:
    emulator.config.update({"slow_seconds": 0.2})
    started = time.monotonic()
    client.batches.list()
    assert time.monotonic() - started >= 0.2


def test_create_delay_records_the_batch_before_answering(
    emulator: RunningEmulator, client: OpenAI
) -> None:
    file_id = upload(client, chat_lines(2))
    control(emulator, "POST", "config", {"create_delay": 1.0})
    with pytest.raises(openai.APITimeoutError):
        client.with_options(timeout=0.3).batches.create(
            input_file_id=file_id,
            endpoint=CHAT,
            completion_window="24h",
            metadata={"idempotency": "k1"},
        )
    (batch,) = control(emulator, "GET", "state").json()["batches"]
    assert batch["metadata"] == {"idempotency": "k1"}
    assert client.batches.list().data[0].id == batch["id"]


# -- control routes ----------------------------------------------------------------------


def test_control_routes_steer_and_report(emulator: RunningEmulator, client: OpenAI) -> None:
    state = control(emulator, "GET", "state").json()
    # What the synchronous endpoints received, answered, limited, held and dropped.
    assert set(state.pop("realtime").values()) == {0}
    # The most the batch queue held, and the batches refused for its limits.
    assert state.pop("queue") == {
        "peak_enqueued_tokens": {},
        "peak_queued_requests": 0,
        "peak_concurrent_batches": 0,
        "refused": {},
    }
    assert state == {"batches": [], "files": 0, "requests_seen": {}}

    config = control(emulator, "POST", "config", {"failure_rate": 0.5})
    assert config.status_code == 200 and config.json()["failure_rate"] == 0.5
    assert emulator.config.failure_rate == 0.5
    assert control(emulator, "POST", "config", {"no_such_knob": 1}).status_code == 400
    assert control(emulator, "POST", "config", {"failure_rate": "lots"}).status_code == 400
    assert control(emulator, "POST", "config", {"data_dir": "/tmp/x"}).status_code == 400
    assert emulator.config.failure_rate == 0.5

    batch = finish(client, submit(client, chat_lines(4), metadata={"who": "test"}).id)[0]
    state = control(emulator, "GET", "state").json()
    (seen,) = state["batches"]
    assert seen["id"] == batch.id and seen["status"] == "completed"
    assert seen["metadata"] == {"who": "test"} and seen["request_count"] == 4
    assert seen["created_at"] == batch.created_at
    assert state["files"] == 1 + (batch.output_file_id is not None) + (
        batch.error_file_id is not None
    )
    calls = state["requests_seen"]
    assert calls["POST /files"] == 1 and calls["POST /batches"] == 1
    assert calls["GET /batches/{batch_id}"] >= 1
    assert "GET /_emulator/state" not in calls


def test_downloads_are_streamed_with_pauses(emulator: RunningEmulator, client: OpenAI) -> None:
    batch = finish(client, submit(client, chat_lines(600)).id)[0]
    size = client.files.retrieve(str(batch.output_file_id)).bytes
    assert size > 3 * 64 * 1024  # several chunks
    emulator.config.update({"download_chunk_delay": 0.05})
    started = time.monotonic()
    assert len(client.files.content(str(batch.output_file_id)).content) == size
    assert time.monotonic() - started >= 0.1


def test_download_memory_stays_flat(client: OpenAI) -> None:
    batch = finish(client, submit(client, chat_lines(8000)).id, timeout=60)[0]
    size = client.files.retrieve(str(batch.output_file_id)).bytes
    assert size > 5_000_000
    tracemalloc.start()
    try:
        received = 0
        with client.files.with_streaming_response.content(str(batch.output_file_id)) as resp:
            for chunk in resp.iter_bytes():
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte file"


def test_serve_prints_the_bound_port(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "unibatch", "emulate", "--port", "0"]
    command += ["--data-dir", str(tmp_path), "--set", "time_scale=0.05"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            name, _, url = proc.stdout.readline().strip().partition("=")
            assert name == "OPENAI_BASE_URL" and url.endswith("/openai/v1")
            assert not url.endswith(":0/openai/v1")
            state = httpx.get(f"{url}/_emulator/state").json()
            assert state["batches"] == []
            assert httpx.get(f"{url}/_emulator/config").json()["time_scale"] == 0.05
        finally:
            proc.terminate()
        assert proc.wait(timeout=10) == 0


# -- queue limits ------------------------------------------------------------------------


def _prompt_tokens(lines: list[str]) -> int:
    """The prompt tokens of Chat Completions lines as OpenAI counts them (its cookbook,
    "How to count tokens with tiktoken"): each message's strings in gpt-4o-mini's encoding,
    3 tokens around each message, 3 that prime the reply."""
    encode = get_encoding("o200k_base").encode_ordinary
    total = 0
    for line in lines:
        for message in json.loads(line)["body"]["messages"]:
            total += 3 + sum(len(encode(value)) for value in message.values())
        total += 3
    return total


def test_a_batch_over_the_enqueued_token_limit_fails_validation(
    emulator: RunningEmulator, emulator_clock: ShiftedClock, client: OpenAI
) -> None:
    # The emulator counts tokens with the model's tokenizer, as OpenAI does: the first
    # batch fits under the limit, the second would pass it while the first is queued.
    first_lines, second_lines = chat_lines(10, prefix="a-"), chat_lines(10, prefix="b-")
    held = _prompt_tokens(first_lines)
    limit = held + _prompt_tokens(second_lines) // 2
    emulator.config.update({"max_enqueued_tokens": limit, "in_progress_seconds": 2000})
    first = submit(client, first_lines)
    second = submit(client, second_lines)
    emulator_clock.advance(1.0)  # past validation
    refused, _ = finish(client, second.id)
    assert refused.status == "failed" and refused.errors is not None
    (error,) = refused.errors.data or []
    assert error.code == "token_limit_exceeded"
    assert "gpt-4o-mini" in (error.message or "")
    assert f"{limit:,} enqueued tokens" in (error.message or "")
    assert client.batches.retrieve(first.id).status == "in_progress"
    # Once the first batch has ended, the queue takes the same batch again.
    emulator_clock.advance(200.0)
    assert finish(client, first.id)[0].status == "completed"
    again = submit(client, chat_lines(10, prefix="b-"))
    emulator_clock.advance(200.0)
    assert finish(client, again.id)[0].status == "completed"
    queue = control(emulator, "GET", "state").json()["queue"]
    assert queue["refused"] == {"enqueued_tokens": 1}
    assert queue["peak_enqueued_tokens"] == {"gpt-4o-mini": held}
