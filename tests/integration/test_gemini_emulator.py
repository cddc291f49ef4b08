"""The Gemini batch emulator, driven over real loopback HTTP by the official google-genai SDK
(API version v1) and by plain HTTP for the v1beta wire details the SDK hides."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from unibatch.emulators import EmulatorConfig, RunningEmulator
from unibatch.emulators.gemini import GeminiEmulator
from unibatch.errors import TransientProviderError
from unibatch.providers.gemini import SPEC as GEMINI
from unibatch.providers.gemini.adapter import GeminiProvider

MODEL = "gemini-2.5-flash"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(time_scale=0.02)


def make_client(emulator: RunningEmulator, key: str = "test") -> genai.Client:
    options = types.HttpOptions(
        base_url=emulator.base_url("gemini"), retry_options=types.HttpRetryOptions(attempts=1)
    )
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def client(emulator: RunningEmulator) -> genai.Client:
    return make_client(emulator)


def gemini(emulator: RunningEmulator) -> GeminiEmulator:
    found = emulator.emulators["gemini"]
    assert isinstance(found, GeminiEmulator)
    return found


def inline(n: int, text: str = "question") -> list[dict[str, Any]]:
    return [
        {
            "contents": [{"role": "user", "parts": [{"text": f"{text} {i}"}]}],
            "metadata": {"key": f"k{i}"},
        }
        for i in range(n)
    ]


def jsonl(n: int) -> bytes:
    rows = (
        {"key": f"row-{i}", "request": {"contents": [{"parts": [{"text": f"q {i}"}]}]}}
        for i in range(n)
    )
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def wait(
    client: genai.Client, name: str, done: Callable[[types.BatchJob], bool] | None = None
) -> types.BatchJob:
    deadline = time.monotonic() + 10
    while True:
        job = client.batches.get(name=name)
        if (done or (lambda j: bool(j.done)))(job):
            return job
        assert time.monotonic() < deadline, f"stuck in {job.state}"
        time.sleep(0.02)


def raw(emulator: RunningEmulator, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"x-goog-api-key": "test", **kwargs.pop("headers", {})}
    url = f"{emulator.base_url('gemini')}/{path}"
    return httpx.request(method, url, headers=headers, timeout=10, **kwargs)


# -- batches ---------------------------------------------------------------------------


def test_inline_batch_runs_to_inline_responses(client: genai.Client) -> None:
    job = client.batches.create(model=MODEL, src=inline(3), config={"display_name": "job-1"})
    assert job.name is not None and job.name.startswith("batches/")
    assert job.state == types.JobState.JOB_STATE_PENDING
    assert job.display_name == "job-1"
    job = wait(client, job.name)
    assert job.state == types.JobState.JOB_STATE_SUCCEEDED
    assert job.dest is not None and job.dest.inlined_responses is not None
    responses = job.dest.inlined_responses
    assert [r.metadata for r in responses] == [{"key": f"k{i}"} for i in range(3)]
    first = responses[0].response
    assert first is not None and first.text is not None and first.text.startswith("Echo: ")
    assert first.usage_metadata is not None and first.usage_metadata.prompt_token_count


def test_list_pages_newest_first(client: genai.Client) -> None:
    names = [client.batches.create(model=MODEL, src=inline(1)).name for _ in range(5)]
    pager = client.batches.list(config={"page_size": 2})
    assert pager.page_size == 2
    listed = [job.name for job in pager]
    assert listed == list(reversed(names))


def test_cancel_then_delete(client: genai.Client, emulator: RunningEmulator) -> None:
    gemini(emulator).config.in_progress_seconds = 500.0  # scaled: 10 s
    job = client.batches.create(model=MODEL, src=inline(4))
    assert job.name is not None
    wait(client, job.name, lambda j: j.state == types.JobState.JOB_STATE_RUNNING)
    client.batches.cancel(name=job.name)
    job = client.batches.get(name=job.name)  # the next poll already shows it cancelled
    assert job.state == types.JobState.JOB_STATE_CANCELLED and job.done
    with pytest.raises(errors.ClientError) as refused:
        client.batches.cancel(name=job.name)
    assert refused.value.code == 400
    client.batches.delete(name=job.name)
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=job.name)
    assert gone.value.code == 404


def test_expired_batch_has_no_results(client: genai.Client, emulator: RunningEmulator) -> None:
    config = gemini(emulator).config
    config.in_progress_seconds, config.completion_window_seconds = 500.0, 10.0
    job = client.batches.create(model=MODEL, src=inline(2))
    assert job.name is not None
    job = wait(client, job.name)
    assert job.state == types.JobState.JOB_STATE_EXPIRED
    assert job.dest is None


def test_embeddings_batch(client: genai.Client) -> None:
    src = {
        "inlined_requests": {"contents": [{"parts": [{"text": "a"}]}, {"parts": [{"text": "b"}]}]}
    }
    with pytest.warns(Warning, match="experimental"):
        job = client.batches.create_embeddings(model="gemini-embedding-001", src=src)  # type: ignore[arg-type]
    assert job.name is not None
    job = wait(client, job.name)
    assert job.dest is not None and job.dest.inlined_embed_content_responses is not None
    vectors = job.dest.inlined_embed_content_responses
    assert len(vectors) == 2


# -- files -----------------------------------------------------------------------------


def test_file_batch_uploads_and_downloads(client: genai.Client) -> None:
    uploaded = client.files.upload(
        file=io.BytesIO(jsonl(4)), config={"mime_type": "application/jsonl", "display_name": "in"}
    )
    assert uploaded.name is not None and uploaded.name.startswith("files/")
    assert uploaded.size_bytes == len(jsonl(4)) and uploaded.display_name == "in"
    assert client.files.get(name=uploaded.name).mime_type == "application/jsonl"
    job = client.batches.create(model=MODEL, src=uploaded.name)
    assert job.name is not None
    job = wait(client, job.name)
    assert job.dest is not None and job.dest.file_name is not None
    assert job.dest.file_name.startswith("files/batch-")
    lines = client.files.download(file=job.dest.file_name).splitlines()
    rows = [orjson.loads(line) for line in lines]
    assert [r["key"] for r in rows] == [f"row-{i}" for i in range(4)]  # input order
    assert all("candidates" in r["response"] for r in rows)
    client.files.delete(name=uploaded.name)
    with pytest.raises(errors.ClientError) as again:
        client.files.delete(name=uploaded.name)
    assert again.value.code == 403  # a repeated delete is PERMISSION_DENIED (capture)


def test_large_upload_goes_in_several_chunks(
    client: genai.Client, emulator: RunningEmulator
) -> None:
    data = jsonl(1) * (9 * 1024 * 1024 // len(jsonl(1)) + 1)  # above the SDK's 8 MB chunks
    uploaded = client.files.upload(file=io.BytesIO(data), config={"mime_type": "text/plain"})
    assert uploaded.size_bytes == len(data)
    assert gemini(emulator).requests_seen["POST /upload/v1/files"] == 3  # start + two chunks
    assert [f.name for f in client.files.list()] == [uploaded.name]


def test_malformed_file_row_is_refused_at_create(
    client: genai.Client, emulator: RunningEmulator
) -> None:
    data = jsonl(2) + b'{"key": "bad"}\n'
    uploaded = client.files.upload(file=io.BytesIO(data), config={"mime_type": "text/plain"})
    assert uploaded.name is not None
    with pytest.raises(errors.ClientError) as refused:
        client.batches.create(model=MODEL, src=uploaded.name)
    assert refused.value.code == 400 and refused.value.status == "INVALID_ARGUMENT"
    assert "Line 3" in str(refused.value.message)
    assert gemini(emulator).batches == {}


# -- the wire under the SDK ------------------------------------------------------------


def test_v1beta_operation_shape(emulator: RunningEmulator) -> None:
    gemini(emulator).config.failure_rate = 0.5
    entries = [
        {"request": {"contents": e["contents"]}, "metadata": e["metadata"]} for e in inline(6)
    ]
    body = {"batch": {"display_name": "snake", "input_config": {"requests": {"requests": entries}}}}
    created = raw(emulator, "POST", f"v1beta/models/{MODEL}:batchGenerateContent", json=body).json()
    name = created["name"]
    assert "done" not in created
    meta = created["metadata"]
    assert meta["@type"].endswith("GenerateContentBatch")
    assert (meta["state"], meta["displayName"], meta["model"]) == (
        "BATCH_STATE_PENDING",
        "snake",
        f"models/{MODEL}",
    )
    assert STAMP.match(meta["createTime"])
    assert meta["batchStats"] == {"requestCount": "6", "pendingRequestCount": "6"}
    deadline = time.monotonic() + 10
    while not (op := raw(emulator, "GET", f"v1beta/{name}").json()).get("done"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    stats = op["metadata"]["batchStats"]
    assert all(isinstance(v, str) for v in stats.values())
    assert "pendingRequestCount" not in stats  # zero counters are omitted
    assert (
        int(stats.get("successfulRequestCount", 0)) + int(stats.get("failedRequestCount", 0)) == 6
    )
    # The output is in both places Google's SDK and REST docs read it from.
    answers = op["metadata"]["output"]["inlinedResponses"]["inlinedResponses"]
    assert op["response"]["inlinedResponses"]["inlinedResponses"] == answers
    assert len([a for a in answers if "error" in a]) == int(stats.get("failedRequestCount", 0))
    assert [a["metadata"]["key"] for a in answers] == [f"k{i}" for i in range(6)]
    assert STAMP.match(op["metadata"]["endTime"])


def test_guide_download_path_and_deleted_batch(
    client: genai.Client, emulator: RunningEmulator
) -> None:
    uploaded = client.files.upload(file=io.BytesIO(jsonl(2)), config={"mime_type": "text/plain"})
    assert uploaded.name is not None
    job = client.batches.create(model=MODEL, src=uploaded.name)
    assert job.name is not None
    job = wait(client, job.name)
    assert job.dest is not None and job.dest.file_name is not None
    path = f"download/v1beta/{job.dest.file_name}:download"
    rows = raw(emulator, "GET", path, params={"alt": "media"}).content.splitlines()
    assert [orjson.loads(r)["key"] for r in rows] == ["row-0", "row-1"]
    generated = raw(emulator, "DELETE", f"v1beta/{job.dest.file_name}")
    assert generated.status_code == 400  # generated files cannot be deleted directly
    client.batches.delete(name=job.name)
    assert raw(emulator, "GET", path, params={"alt": "media"}).status_code == 404


def test_auth(emulator: RunningEmulator) -> None:
    path = "v1beta/batches"
    missing = httpx.get(f"{emulator.base_url('gemini')}/{path}", timeout=10)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    by_query = httpx.get(f"{emulator.base_url('gemini')}/{path}", params={"key": "k"}, timeout=10)
    assert by_query.status_code == 200 and by_query.json() == {}
    bad_client = make_client(emulator, key="invalid-key")
    with pytest.raises(errors.ClientError) as bad:
        bad_client.batches.get(name="batches/x")
    assert bad.value.code == 400
    assert "API_KEY_INVALID" in str(bad.value.details)


def test_faults_carry_retry_info(client: genai.Client, emulator: RunningEmulator) -> None:
    gemini(emulator).inject_faults(1, status=429, retry_after=2)
    limited = raw(emulator, "GET", "v1/batches")
    assert limited.status_code == 429
    error = limited.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][0]["retryDelay"] == "2s"
    gemini(emulator).inject_faults(1, status=503)
    with pytest.raises(errors.ServerError) as unavailable:
        client.batches.list()
    assert unavailable.value.code == 503
    assert raw(emulator, "GET", "v1/batches").status_code == 200


async def test_adapter_honours_retry_info(emulator: RunningEmulator) -> None:
    provider = GeminiProvider(GEMINI, "test", emulator.base_url("gemini"))
    gemini(emulator).inject_faults(1, status=429, retry_after=7)
    try:
        with pytest.raises(TransientProviderError) as limited:
            await provider.find("tag", since=0)
        assert limited.value.retry_after == 7.0
        assert await provider.find("tag", since=0) is None
    finally:
        await provider.aclose()
