"""The Mistral emulator, driven over real loopback HTTP by the official `mistralai` SDK:
upload, create, get, list by metadata, download, cancel, as Mistral's batch guide walks
through them, and its chat completions and embeddings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from mistralai.client import Mistral
from mistralai.client.errors import SDKError

from tests.support.clock import ShiftedClock
from tests.support.waiting import polled
from unibatch.emulators import RunningEmulator

MODEL = "mistral-small-latest"


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[Mistral]:
    with Mistral(api_key="test", server_url=emulator.base_url("mistral")) as sdk:
        yield sdk


def upload(client: Mistral, bodies: list[dict[str, Any]]) -> str:
    lines = [json.dumps({"custom_id": f"req-{i}", "body": b}) for i, b in enumerate(bodies)]
    content = ("\n".join(lines) + "\n").encode()
    made = client.files.upload(file={"file_name": "in.jsonl", "content": content}, purpose="batch")
    assert made.purpose == "batch" and made.size_bytes == len(content)
    return made.id


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], "max_tokens": 20, **extra}


def poll(client: Mistral, job_id: str, statuses: set[str]) -> Any:
    return polled(
        lambda: client.batch.jobs.get(job_id=job_id), lambda j: j.status in statuses, str(statuses)
    )


def rows(client: Mistral, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    text = client.files.download(file_id=file_id).read().decode()
    return {row["custom_id"]: row for row in map(json.loads, text.splitlines())}


def test_sdk_runs_the_whole_batch_flow(client: Mistral) -> None:
    file_id = upload(client, [chat("hi"), chat("bad", logit_bias={"1": 1}), chat("bye")])
    job = client.batch.jobs.create(
        input_files=[file_id],
        endpoint="/v1/chat/completions",
        model=MODEL,
        metadata={"job": "j1"},
    )
    assert job.status == "QUEUED" and job.input_files == [file_id]
    done = poll(client, job.id, {"SUCCESS"})
    assert (done.total_requests, done.succeeded_requests, done.failed_requests) == (3, 2, 1)
    output = rows(client, done.output_file)
    assert set(output) == {"req-0", "req-2"}
    assert output["req-0"]["response"]["body"]["model"] == MODEL
    assert rows(client, done.error_file)["req-1"]["response"]["status_code"] == 400
    assert client.files.retrieve(file_id=done.output_file).sample_type == "batch_result"
    listed = client.batch.jobs.list(metadata={"job": "j1"})
    assert [j.id for j in listed.data or []] == [job.id] and listed.total == 1
    assert client.batch.jobs.list(metadata={"job": "other"}).total == 0
    assert client.batch.jobs.list(status=["SUCCESS"]).total == 1
    assert client.files.delete(file_id=file_id).deleted


def test_sdk_cancels_a_running_job(
    emulator: RunningEmulator, client: Mistral, emulator_clock: ShiftedClock
) -> None:
    emulator.emulators["mistral"].config.in_progress_seconds = 10_000
    file_id = upload(client, [chat(f"q{i}") for i in range(10)])
    job = client.batch.jobs.create(
        input_files=[file_id], endpoint="/v1/chat/completions", model=MODEL
    )
    poll(client, job.id, {"RUNNING"})
    emulator_clock.advance(emulator.config.scaled(5_000))
    assert client.batch.jobs.cancel(job_id=job.id).status == "CANCELLATION_REQUESTED"
    ended = poll(client, job.id, {"CANCELLED"})
    # Only the requests that ran have rows; the rest are simply not there.
    ran = rows(client, ended.output_file)
    assert 0 < len(ran) == ended.succeeded_requests < 10 and ended.error_file is None
    with pytest.raises(SDKError):
        client.batch.jobs.cancel(job_id=job.id)


def test_a_job_past_its_timeout_ends_timeout_exceeded(
    emulator: RunningEmulator, client: Mistral, emulator_clock: ShiftedClock
) -> None:
    emulator.emulators["mistral"].config.in_progress_seconds = 10 * 86400
    file_id = upload(client, [chat(f"q{i}") for i in range(6)])
    job = client.batch.jobs.create(
        input_files=[file_id], endpoint="/v1/embeddings", model="mistral-embed", timeout_hours=2
    )
    poll(client, job.id, {"RUNNING"})
    emulator_clock.advance(emulator.config.scaled(86400 * 2 / 24) + 1)
    assert poll(client, job.id, {"TIMEOUT_EXCEEDED"}).error_file is None


def test_an_unknown_input_file_fails_the_job(client: Mistral) -> None:
    job = client.batch.jobs.create(input_files=["nope"], endpoint="/v1/chat/completions")
    failed = poll(client, job.id, {"FAILED"})
    assert failed.errors and "nope" in failed.errors[0].message


def test_chat_and_embeddings_answer(client: Mistral) -> None:
    answer = client.chat.complete(model=MODEL, messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content
    vectors = client.embeddings.create(model="mistral-embed", inputs=["a", "b"])
    assert len(vectors.data) == 2
