"""The Groq emulator, driven over real loopback HTTP by the official `groq` SDK: upload,
create, poll, download, cancel and list, as Groq's batch guide walks through them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import groq
import pytest
from groq import Groq

from tests.support.clock import ShiftedClock
from tests.support.waiting import polled
from unibatch.emulators import RunningEmulator

CHAT = "/v1/chat/completions"
MODEL = "llama-3.1-8b-instant"


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[Groq]:
    with Groq(base_url=emulator.base_url("groq"), api_key="test", max_retries=0) as sdk:
        yield sdk


def upload(client: Groq, bodies: list[dict[str, Any]]) -> str:
    lines = [
        json.dumps({"custom_id": f"req-{i}", "method": "POST", "url": CHAT, "body": body})
        for i, body in enumerate(bodies)
    ]
    data = ("\n".join(lines) + "\n").encode()
    made = client.files.create(file=("input.jsonl", io.BytesIO(data)), purpose="batch")
    assert made.purpose == "batch" and made.bytes == len(data)
    assert made.id is not None
    return made.id


def body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **extra}


def poll(client: Groq, batch_id: str, statuses: set[str]) -> Any:
    return polled(
        lambda: client.batches.retrieve(batch_id), lambda b: b.status in statuses, str(statuses)
    )


def rows(client: Groq, file_id: str | None) -> dict[str, dict[str, Any]]:
    assert file_id is not None
    text = client.files.content(file_id).text()
    return {row["custom_id"]: row for row in map(json.loads, text.splitlines())}


def test_sdk_runs_the_whole_batch_flow(client: Groq) -> None:
    file_id = upload(client, [body("hi"), body("named", logit_bias={"1": 1}), body("bye")])
    assert client.files.info(file_id).filename == "input.jsonl"
    created = client.batches.create(
        input_file_id=file_id,
        endpoint=CHAT,
        completion_window="7d",
        metadata={"job": "j1"},
    )
    assert created.status == "validating" and created.completion_window == "7d"
    assert created.expires_at is not None and created.expires_at > created.created_at
    done = poll(client, created.id, {"completed"})
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.failed) == (3, 1)
    output = rows(client, done.output_file_id)
    assert set(output) == {"req-0", "req-2"}
    assert output["req-0"]["response"]["body"]["choices"][0]["message"]["role"] == "assistant"
    # Groq refuses logit_bias: that request answers 400 in the error file.
    refused = rows(client, done.error_file_id)["req-1"]["response"]
    assert refused["status_code"] == 400
    assert "logit_bias" in refused["body"]["error"]["message"]
    assert [b.id for b in client.batches.list().data] == [created.id]
    assert {f.purpose for f in client.files.list().data} == {"batch", "batch_output"}
    assert client.files.delete(file_id).deleted


def test_sdk_cancels_a_running_batch(
    emulator: RunningEmulator, client: Groq, emulator_clock: ShiftedClock
) -> None:
    emulator.emulators["groq"].config.in_progress_seconds = 10_000
    batch = client.batches.create(
        input_file_id=upload(client, [body(f"q{i}") for i in range(10)]),
        endpoint=CHAT,
        completion_window="24h",
    )
    poll(client, batch.id, {"in_progress"})
    emulator_clock.advance(emulator.config.scaled(5_000))
    assert client.batches.cancel(batch.id).status == "cancelling"
    ended = poll(client, batch.id, {"cancelled"})
    finished = rows(client, ended.output_file_id)
    unrun = rows(client, ended.error_file_id)
    assert len(finished) + len(unrun) == 10 and finished and unrun
    assert {r["error"]["code"] for r in unrun.values()} == {"batch_cancelled"}
    with pytest.raises(groq.BadRequestError):
        client.batches.cancel(batch.id)


@pytest.mark.parametrize("window", ["1h", "8d", "forever"])
def test_windows_outside_24h_to_7d_are_refused(client: Groq, window: str) -> None:
    file_id = upload(client, [body("hi")])
    with pytest.raises(groq.BadRequestError, match=r"completion_window|24h"):
        client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window=window)


def test_list_pages_with_cursor(emulator: RunningEmulator, client: Groq) -> None:
    file_id = upload(client, [body("hi")])
    made = [
        client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h").id
        for _ in range(22)
    ]
    first = client.batches.list().model_dump()
    assert [b["id"] for b in first["data"]] == made[::-1][:20]
    cursor = first["paging"]["next_cursor"]
    second = client.batches.list(extra_query={"cursor": cursor}).model_dump()
    assert [b["id"] for b in second["data"]] == made[1::-1]
    assert not second["paging"]
    some = client.batches.list(extra_query={"id": [made[3], made[5]]}).data
    assert [b.id for b in some] == [made[3], made[5]]


def test_chat_completion_answers_and_refuses_like_groq(client: Groq) -> None:
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content
    with pytest.raises(groq.BadRequestError, match="'n'"):
        client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}], n=2
        )
