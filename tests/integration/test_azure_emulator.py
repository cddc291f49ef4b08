"""The Azure OpenAI emulator, driven over real loopback HTTP by `openai.AzureOpenAI`: the
whole batch flow on Azure's paths, with its api-version, api-key header and deployments."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from openai import AzureOpenAI, OpenAI
from openai.types import Batch

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines, emulator_state
from tests.support.waiting import polled
from unibatch.emulators import AzureOpenAIEmulator, RunningEmulator
from unibatch.engine import Engine
from unibatch.types import BatchStatus

API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-mini-batch"


@pytest.fixture
def client(emulator: RunningEmulator) -> Iterator[AzureOpenAI]:
    with AzureOpenAI(
        azure_endpoint=emulator.base_url("azure"),
        api_key="azure-key",
        api_version=API_VERSION,
        max_retries=0,
    ) as sdk:
        yield sdk


def lines(n: int, deployment: str = DEPLOYMENT) -> bytes:
    rows = [
        {
            "custom_id": f"task-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": deployment, "messages": [{"role": "user", "content": f"q {i}"}]},
        }
        for i in range(n)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def create(client: AzureOpenAI | OpenAI, data: bytes) -> Batch:
    uploaded = client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    assert uploaded.status == "processed"
    # Microsoft's examples name the endpoint without /v1.
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/chat/completions",  # type: ignore[arg-type]
        completion_window="24h",
    )


def until(client: AzureOpenAI | OpenAI, batch_id: str, statuses: set[str]) -> Batch:
    return polled(
        lambda: client.batches.retrieve(batch_id), lambda b: b.status in statuses, str(statuses)
    )


def test_whole_batch_flow_with_the_azure_sdk(
    client: AzureOpenAI, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    done = until(client, create(client, lines(5)).id, {"completed", "failed"})
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == 5
    assert done.output_file_id is not None
    output = [json.loads(x) for x in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(row["custom_id"] for row in output) == [f"task-{i}" for i in range(5)]
    assert all(row["response"]["status_code"] == 200 for row in output)
    assert output[0]["response"]["body"]["model"] == DEPLOYMENT

    # A second batch held in progress, cancelled through the SDK.
    emulator.emulators["azure"].config.in_progress_seconds = 20_000.0
    held = create(client, lines(4))
    until(client, held.id, {"in_progress"})
    assert client.batches.cancel(held.id).status == "cancelling"
    emulator_clock.advance(60.0)
    assert until(client, held.id, {"cancelled"}).status == "cancelled"

    listed = [b.id for b in client.batches.list(limit=1)]  # pages through both
    assert listed == [held.id, done.id]
    seen = emulator.emulators["azure"].requests_seen
    assert seen["POST /openai/files"] == 2 and seen["POST /openai/batches/{batch_id}/cancel"] == 1


def test_v1_surface_takes_the_plain_openai_client(emulator: RunningEmulator) -> None:
    # Microsoft's current samples: OpenAI(base_url="https://{res}.openai.azure.com/openai/v1/").
    base = emulator.base_url("azure") + "/openai/v1/"
    with OpenAI(base_url=base, api_key="azure-key", max_retries=0) as sdk:
        done = until(sdk, create(sdk, lines(2)).id, {"completed"})
    assert done.request_counts is not None and done.request_counts.completed == 2


def test_chat_goes_to_the_deployment(client: AzureOpenAI, emulator: RunningEmulator) -> None:
    answer = client.chat.completions.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.choices[0].message.content
    seen = emulator.emulators["azure"].requests_seen
    assert seen["POST /openai/deployments/{deployment}/chat/completions"] == 1


def test_mixed_deployments_fail_the_batch(client: AzureOpenAI) -> None:
    data = lines(2) + lines(1, deployment="other-deployment").replace(b"task-0", b"task-9")
    failed = until(client, create(client, data).id, {"failed", "completed"})
    assert failed.status == "failed"
    assert failed.errors is not None and failed.errors.data
    assert failed.errors.data[0].line == 3


def test_azure_refusals_use_its_envelope(emulator: RunningEmulator) -> None:
    url = emulator.base_url("azure") + "/openai/batches"
    no_version = httpx.get(url, headers={"api-key": "k"})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    no_key = httpx.get(url, params={"api-version": API_VERSION})
    assert no_key.status_code == 401
    assert "subscription key" in no_key.json()["error"]["message"]
    assert httpx.get(url, params={"api-version": API_VERSION}, headers={"api-key": "k"}).is_success


async def test_a_full_token_quota_at_create_is_retried(
    engine: Engine, emulator: RunningEmulator
) -> None:
    azure = emulator.emulators["azure"]
    assert isinstance(azure, AzureOpenAIEmulator)
    azure.quota_full_creates = 2
    batch_id = await engine.create_batch(chat_lines(4, model="azure/gpt-4o-mini"))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED and batch.request_counts.succeeded == 4
    assert azure.quota_full_creates == 0
    assert len(emulator_state(emulator, "azure")["batches"]) == 1
