"""The `unibatch` command as users run it: a subprocess against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.emulated import chat_lines, emulator_state
from tests.support.processes import run


@pytest.fixture
def env(emulator: Any, sqlite_url: str) -> dict[str, str]:
    return {
        "UNIBATCH_DATABASE_URL": sqlite_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": emulator.base_url("openai"),
        "UNIBATCH_POLL_SCHEDULE": "0.1",
    }


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def test_demo_runs_on_the_builtin_emulator(tmp_path: Path) -> None:
    out = tmp_path / "demo.jsonl"
    result = run(["demo", "-o", str(out)], {"HOME": str(tmp_path)}, timeout=180)
    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(rows) == 200
    assert len({r["custom_id"] for r in rows}) == 200
    assert all(r["response"]["status_code"] == 200 for r in rows)
    assert "succeeded" in result.stderr and "200" in result.stderr
    assert "cost" in result.stderr


def test_submit_wait_status_list_results(env: dict[str, str], tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "in.jsonl", chat_lines(15, model="gpt-4o-mini"))
    out = tmp_path / "out.jsonl"
    submitted = run(
        [
            "submit",
            str(requests),
            "--model",
            "openai/gpt-4o-mini",
            "--wait",
            "-o",
            str(out),
            "--json",
        ],
        env,
    )
    assert submitted.returncode == 0, submitted.stderr
    batch = orjson.loads(submitted.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"]["total"] == 15
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"r-{i:05d}" for i in range(15)]
    assert lines[0]["response"]["body"]["model"] == "gpt-4o-mini"

    status = run(["status", batch["id"], "--json"], env)
    assert status.returncode == 0
    shown = orjson.loads(status.stdout)
    assert {"id", "status", "request_counts"} <= shown.keys()
    assert shown["request_counts"]["succeeded"] == 15

    listed = run(["list", "--json"], env)
    assert [b["id"] for b in orjson.loads(listed.stdout)] == [batch["id"]]

    unified = run(["results", batch["id"], "--format", "unified"], env)
    rows = [orjson.loads(line) for line in unified.stdout.splitlines()]
    assert len(rows) == 15
    assert rows[0]["status"] == "succeeded" and rows[0]["provider"] == "openai"
    assert rows[0]["usage"]["input_tokens"] > 0 and rows[0]["cost"]["total"] > 0


def test_submit_then_worker_less_wait_and_cancel(env: dict[str, str], tmp_path: Path) -> None:
    requests = write_jsonl(tmp_path / "in.jsonl", chat_lines(5))
    submitted = run(["submit", str(requests)], env)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    cancelled = run(["cancel", batch_id, "--json"], env)
    assert orjson.loads(cancelled.stdout)["status"] == "cancelling"
    waited = run(["wait", batch_id, "--json"], env)
    assert waited.returncode == 3  # the batch ended cancelled
    assert orjson.loads(waited.stdout)["request_counts"]["cancelled"] == 5


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"custom_id": "a", "body": {}}\n{oops\n', ":2: not valid JSON"),
        (b'{"body": {}}\n', ":1: missing custom_id"),
        (
            b'{"custom_id": "a", "body": {}}\n{"custom_id": "a", "body": {}}\n',
            ":2: duplicate custom_id",
        ),
        (b'{"custom_id": "a\\u0000", "body": {}}\n', ":1: custom_id contains a NUL character"),
        (
            b'{"custom_id": "a", "body": {"x": ' + b"[" * 300 + b"]" * 300 + b"}}\n",
            ":1: body is nested too deeply",
        ),
    ],
)
def test_bad_input_is_named_and_nothing_is_sent(
    env: dict[str, str], emulator: Any, tmp_path: Path, content: bytes, needle: str
) -> None:
    before = len(emulator_state(emulator)["batches"])
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    result = run(["submit", str(path), "--model", "openai/gpt-4o-mini", "--wait"], env)
    assert result.returncode == 2
    assert f"{path}{needle}" in result.stderr
    assert len(emulator_state(emulator)["batches"]) == before
    assert orjson.loads(run(["list", "--json"], env).stdout) == []


def test_unknown_provider_and_missing_key(env: dict[str, str], tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(2, model="nope/model"))
    unknown = run(["submit", str(path)], env)
    assert unknown.returncode == 2
    assert ":1: unknown provider 'nope'" in unknown.stderr
    path = write_jsonl(tmp_path / "in.jsonl", chat_lines(2))
    no_key = run(["submit", str(path)], {**env, "OPENAI_API_KEY": ""})
    assert no_key.returncode == 2
    assert "set OPENAI_API_KEY" in no_key.stderr


def test_unknown_batch_exit_code(env: dict[str, str]) -> None:
    result = run(["status", "ubb_nope"], env)
    assert result.returncode == 4
    assert "no batch 'ubb_nope'" in result.stderr
