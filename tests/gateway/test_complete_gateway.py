"""The gateway shows everything the engine holds, as OpenAI's SDK expects it: batches made
through the CLI and Python API (to the master key), output and error files in the file
list, upload expiry, every timestamp, and lines checked before a budget is."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest
from openai import AsyncOpenAI

from tests.gateway.conftest import MASTER, jsonl, new_key
from tests.support.emulated import chat_lines, drive_until_phase
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.gateway.context import Gateway
from unibatch.gateway.routes_files import sweep_expired_files

DAY = 86400


def _sdk(client: httpx.AsyncClient, key: str = MASTER) -> AsyncOpenAI:
    return AsyncOpenAI(base_url="http://gateway/v1", api_key=key, http_client=client, max_retries=0)


async def test_master_key_sees_batches_made_outside_the_gateway(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    lines = chat_lines(3)
    lines[0]["body"]["messages"][0]["content"] = "emulate-error:400"
    made = await engine.create_batch(lines, max_attempts=1)  # as the CLI and Client do
    await engine.wait(made, interval=0.02, timeout=60)
    master = _sdk(client)

    listed = [b.id async for b in master.batches.list()]
    assert made in listed
    batch = await master.batches.retrieve(made)
    assert (batch.status, batch.request_counts.total) == ("completed", 3)
    assert batch.input_file_id is None
    assert batch.output_file_id is not None and batch.error_file_id is not None
    output = (await master.files.content(batch.output_file_id)).text.splitlines()
    assert len(output) == 2

    key = (await new_key(client, "other"))["key"]
    other = _sdk(client, key)
    assert made not in [b.id async for b in other.batches.list()]
    with pytest.raises(openai.NotFoundError):
        await other.batches.retrieve(made)


async def test_file_list_holds_output_and_error_files(
    client: httpx.AsyncClient, engine: Engine
) -> None:
    key = (await new_key(client, "k"))["key"]
    sdk = _sdk(client, key)
    lines = chat_lines(4)
    lines[1]["body"]["messages"][0]["content"] = "emulate-error:400"
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await engine.wait(batch.id, interval=0.02, timeout=60)
    batch = await sdk.batches.retrieve(batch.id)

    files = {f.id: f async for f in sdk.files.list()}
    assert set(files) == {uploaded.id, batch.output_file_id, batch.error_file_id}
    for file_id in (batch.output_file_id, batch.error_file_id):
        assert file_id is not None
        listed = files[file_id]
        assert listed.purpose == "batch_output"
        content = (await sdk.files.content(file_id)).content
        assert listed.bytes == len(content)
        assert listed.created_at == batch.completed_at
    assert files[uploaded.id].purpose == "batch"
    # Newest first: the batch's files came after the upload.
    assert [f.id async for f in sdk.files.list()][-1] == uploaded.id
    only = [f.id async for f in sdk.files.list(purpose="batch_output")]
    assert sorted(only) == sorted([batch.output_file_id, batch.error_file_id])
    # Paging through one at a time visits each file once.
    paged = [f.id async for f in sdk.files.list(limit=1)]
    assert sorted(paged) == sorted(files)
    # Another key sees none of them.
    stranger = _sdk(client, (await new_key(client, "stranger"))["key"])
    assert [f async for f in stranger.files.list()] == []


async def test_uploads_expire_and_are_swept(
    client: httpx.AsyncClient, engine: Engine, gw_settings: GatewaySettings
) -> None:
    sdk = _sdk(client)
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(chat_lines(1))), purpose="batch")
    assert uploaded.expires_at == uploaded.created_at + 30 * DAY
    gw = Gateway.build(engine, gw_settings)
    on_disk = Path(gw_settings.files_dir) / uploaded.id
    assert on_disk.exists()

    assert await sweep_expired_files(gw, time.time() + 29 * DAY) == 0
    assert await sweep_expired_files(gw, time.time() + 31 * DAY) == 1
    assert not on_disk.exists()
    with pytest.raises(openai.NotFoundError):
        await sdk.files.retrieve(uploaded.id)
    assert [f async for f in sdk.files.list()] == []


async def test_expiry_is_configurable(engine: Engine, tmp_path: Path) -> None:
    for days, expected in ((2, 2 * DAY), (0, None)):
        settings = GatewaySettings(
            master_key=MASTER, files_dir=tmp_path / f"files{days}", file_expiry_days=days
        )
        app = create_app(engine, gateway_settings=settings, worker=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            sdk = _sdk(http)
            uploaded = await sdk.files.create(
                file=("in.jsonl", jsonl(chat_lines(1))), purpose="batch"
            )
        got = None if uploaded.expires_at is None else uploaded.expires_at - uploaded.created_at
        assert got == expected


async def test_timestamps_of_a_completed_batch(client: httpx.AsyncClient, engine: Engine) -> None:
    sdk = _sdk(client)
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(chat_lines(2))), purpose="batch")
    batch = await sdk.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    await engine.wait(batch.id, interval=0.02, timeout=60)
    done = await sdk.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert done.in_progress_at is not None
    assert done.finalizing_at is not None and done.completed_at is not None
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at
    assert done.expires_at == done.created_at + DAY
    assert done.cancelling_at is None and done.cancelled_at is None


@pytest.mark.parametrize("emulator", [{"validating_seconds": 1e6}], indirect=True)
async def test_status_and_timestamps_agree_while_validating_and_cancelling(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    sdk = _sdk(client)
    made = await engine.create_batch(chat_lines(2))
    shown = await sdk.batches.retrieve(made)
    assert (shown.status, shown.in_progress_at) == ("validating", None)  # not sent yet
    await drive_until_phase(engine, made, "running")
    shown = await sdk.batches.retrieve(made)
    # Sent, but the provider is still validating it: not in progress yet.
    assert (shown.status, shown.in_progress_at) == ("validating", None)

    before = int(time.time())
    cancelling = await sdk.batches.cancel(made)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None and cancelling.cancelling_at >= before
    await engine.wait(made, interval=0.02, timeout=60)
    ended = await sdk.batches.retrieve(made)
    assert ended.status == "cancelled"
    assert ended.cancelled_at is not None
    assert ended.cancelling_at == cancelling.cancelling_at <= ended.cancelled_at
    assert ended.finalizing_at is None and ended.completed_at is None


@pytest.mark.parametrize("inline", [False, True])
async def test_bad_lines_get_400_before_the_budget_check(
    client: httpx.AsyncClient, inline: bool
) -> None:
    """Huge max_tokens would take the key over its budget (402); the bad line wins."""
    key = (await new_key(client, "capped", max_budget=0.0001))["key"]
    sdk = _sdk(client, key)
    lines = chat_lines(3)
    for line in lines:
        line["body"]["max_tokens"] = 100_000
    lines[2]["body"]["stream"] = True
    with pytest.raises(openai.BadRequestError) as refused:
        if inline:
            await sdk.post(
                "/batches",
                body={
                    "requests": [{"custom_id": x["custom_id"], "body": x["body"]} for x in lines]
                },
                cast_to=httpx.Response,
            )
        else:
            uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
            await sdk.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
    error = refused.value.body
    assert isinstance(error, dict)
    where = "requests[2]" if inline else "line 3"
    assert str(error["message"]).startswith(where), error
    assert "stream" in str(error["message"])
    # Good lines over the budget still get 402.
    del lines[2]["body"]["stream"]
    uploaded = await sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    with pytest.raises(openai.APIStatusError) as over:
        await sdk.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert over.value.status_code == 402
