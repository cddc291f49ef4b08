"""One logical batch naming every provider ends with one uniform results file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.support.emulated import chat_lines, emulator_state, open_engine, provider_env
from tests.support.processes import run
from unibatch.config import Settings
from unibatch.types import BatchStatus, RequestStatus

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "xai": "xai/grok-4-fast-non-reasoning",
    "azure": "azure/gpt-4o-mini",
    "bedrock": "bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
    "groq": "groq/llama-3.1-8b-instant",
    "mistral": "mistral/mistral-small-latest",
    "together": "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
}


def mixed_lines(per_provider: int) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for i in range(per_provider):
        for name, model in MODELS.items():
            lines.extend(chat_lines(1, model=model, prefix=f"{name}-{i}"))
    return lines


async def test_every_provider_in_one_batch(
    database_url: str, emulator: Any, fast_settings: Settings
) -> None:
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        lines = mixed_lines(5)
        batch_id = await engine.create_batch(lines)
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
        assert batch.status is BatchStatus.COMPLETED
        assert batch.providers == tuple(sorted(MODELS))
        assert batch.request_counts.succeeded == 5 * len(MODELS)
        results = [r async for r in engine.results(batch_id)]
        assert [r.custom_id for r in results] == [line["custom_id"] for line in lines]
        for result in results:
            assert result.status is RequestStatus.SUCCEEDED
            assert result.provider == result.custom_id.split("-")[0]
            line = result.as_openai(batch_id)
            body = line["response"]["body"]
            # Whatever ran it, the answer is a ChatCompletion.
            assert body["object"] == "chat.completion"
            assert body["choices"][0]["message"]["role"] == "assistant"
            assert isinstance(body["choices"][0]["message"]["content"], str)
            assert body["usage"]["prompt_tokens"] > 0
            assert result.usage.input_tokens > 0
        for name in MODELS:
            assert len(emulator_state(emulator, name)["batches"]) == 1
    finally:
        await engine.aclose()


def test_cli_writes_one_results_file_for_every_provider(
    emulator: Any, sqlite_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in mixed_lines(2)))
    out = tmp_path / "results.jsonl"
    env = {
        **provider_env(emulator),
        "UNIBATCH_DATABASE_URL": sqlite_url,
        "UNIBATCH_POLL_SCHEDULE": "0.1",
    }
    result = run(["submit", str(path), "--wait", "-o", str(out), "--json"], env)
    assert result.returncode == 0, result.stderr
    assert sorted(orjson.loads(result.stdout)["providers"]) == sorted(MODELS)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(rows) == 2 * len(MODELS)
    assert {tuple(sorted(row)) for row in rows} == {("custom_id", "error", "id", "response")}
    assert all(row["response"]["status_code"] == 200 for row in rows)
