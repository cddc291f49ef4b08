"""The Together emulator, driven over real loopback HTTP by the official `together` SDK:
upload (its presigned three-step flow), create, poll, download, cancel and list, as
Together's batch guide walks through them, and its chat completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import together
from together import Together

from tests.support.clock import ShiftedClock
from tests.support.waiting import polled
from unibatch.emulators import RunningEmulator

CHAT = "/v1/chat/completions"
MODEL = "meta-llama/Llama-3.3-70B-Instruct-Turbo"


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[Together]:
    with Together(base_url=emulator.base_url("together"), api_key="test", max_retries=0) as sdk:
        yield sdk


def upload(client: Together, tmp_path: Path, bodies: list[dict[str, Any]]) -> str:
    path = tmp_path / "batch.jsonl"
    lines = [json.dumps({"custom_id": f"req-{i}", "body": b}) for i, b in enumerate(bodies)]
    path.write_text("\n".join(lines) + "\n")
    made = client.files.upload(path, purpose="batch-api", check=False)
    assert made.purpose == "batch-api" and made.bytes == path.stat().st_size
    return made.id


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def poll(client: Together, job_id: str, statuses: set[str]) -> Any:
    return polled(
        lambda: client.batches.retrieve(job_id), lambda j: j.status in statuses, str(statuses)
    )


def rows(client: Together, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    text = client.files.content(file_id).text()
    return {row["custom_id"]: row for row in map(json.loads, text.splitlines())}


def test_sdk_runs_the_whole_batch_flow(client: Together, tmp_path: Path) -> None:
    stops = ["a", "b", "c", "d", "e"]
    file_id = upload(client, tmp_path, [chat("hi"), chat("bad", stop=stops), chat("bye")])
    made = client.batches.create(input_file_id=file_id, endpoint=CHAT, model_id=MODEL)
    assert made.job is not None and made.job.status == "VALIDATING"
    done = poll(client, made.job.id, {"COMPLETED"})
    assert done.progress == 100.0 and done.x_model_id == MODEL
    output = rows(client, done.output_file_id)
    assert set(output) == {"req-0", "req-2"}
    assert output["req-0"]["response"]["body"]["choices"][0]["message"]["content"]
    failed = rows(client, done.error_file_id)["req-1"]
    assert failed["error"]["code"] == "batch_client_error" and "stop" in failed["error"]["message"]
    assert [job.id for job in client.batches.list()] == [made.job.id]
    assert client.files.retrieve(file_id).filename == "batch.jsonl"
    assert file_id in {f.id for f in client.files.list().data}
    assert client.files.delete(file_id).deleted


def test_sdk_cancels_a_running_job(
    emulator: RunningEmulator, client: Together, emulator_clock: ShiftedClock, tmp_path: Path
) -> None:
    emulator.emulators["together"].config.in_progress_seconds = 10_000
    file_id = upload(client, tmp_path, [chat(f"q{i}") for i in range(10)])
    made = client.batches.create(input_file_id=file_id, endpoint=CHAT)
    assert made.job is not None
    poll(client, made.job.id, {"IN_PROGRESS"})
    emulator_clock.advance(emulator.config.scaled(5_000))
    # CANCELING is not in the SDK's status Literal, but Together sends it while a cancel
    # drains; the SDK's models keep what they are sent.
    assert client.batches.cancel(made.job.id).status == "CANCELING"
    ended = poll(client, made.job.id, {"CANCELLED"})
    ran = rows(client, ended.output_file_id)
    assert 0 < len(ran) < 10
    with pytest.raises(together.ConflictError, match="terminal state: CANCELLED"):
        client.batches.cancel(made.job.id)


def test_an_unknown_input_file_fails_the_job(client: Together) -> None:
    made = client.batches.create(input_file_id="file-nope", endpoint=CHAT)
    assert made.job is not None
    failed = poll(client, made.job.id, {"FAILED"})
    assert failed.error and failed.output_file_id is None


def test_chat_completion_answers(client: Together) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices and answer.choices[0].message
