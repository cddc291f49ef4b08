"""Gemini's Files API serves generated files (a batch's responses) and refuses to serve
uploads, and google-genai's `files.download` works on what the emulator lists."""

from __future__ import annotations

import io
import time

import httpx
import orjson
import pytest
from google import genai
from google.genai import types

from unibatch.emulators import EmulatorConfig, RunningEmulator

ROWS = b"".join(
    orjson.dumps({"key": f"k{i}", "request": {"contents": [{"parts": [{"text": "q"}]}]}}) + b"\n"
    for i in range(3)
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(time_scale=0.02)


def test_generated_files_download_and_uploads_do_not(emulator: RunningEmulator) -> None:
    client = genai.Client(
        api_key="test", http_options=types.HttpOptions(base_url=emulator.base_url("gemini"))
    )
    uploaded = client.files.upload(file=io.BytesIO(ROWS), config={"mime_type": "application/jsonl"})
    assert uploaded.name is not None and uploaded.download_uri is None
    job = client.batches.create(model="gemini-2.5-flash", src=uploaded.name)
    assert job.name is not None
    deadline = time.monotonic() + 30
    while not (job := client.batches.get(name=job.name)).done:  # type: ignore[arg-type]
        assert time.monotonic() < deadline, "the batch never ended"
        time.sleep(0.02)
    assert job.dest is not None and job.dest.file_name is not None

    generated = client.files.get(name=job.dest.file_name)
    assert generated.download_uri is not None
    assert generated.download_uri.endswith(f"/{generated.name}:download?alt=media")
    rows = [orjson.loads(line) for line in client.files.download(file=generated).splitlines()]
    assert [row["key"] for row in rows] == ["k0", "k1", "k2"]
    assert httpx.get(generated.download_uri, headers={"x-goog-api-key": "test"}).is_success

    with pytest.raises(ValueError, match="Only generated files can be downloaded"):
        client.files.download(file=client.files.get(name=uploaded.name))
    refused = httpx.get(
        f"{emulator.base_url('gemini')}/v1beta/{uploaded.name}:download",
        params={"alt": "media"},
        headers={"x-goog-api-key": "test"},
    )
    assert refused.status_code == 400
    assert "Only generated files can be downloaded" in refused.json()["error"]["message"]
