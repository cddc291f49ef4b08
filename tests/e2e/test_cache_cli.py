"""`unibatch submit --cache` as users run it: a subprocess against the emulator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from tests.e2e.test_cli import env as env
from tests.e2e.test_cli import write_jsonl
from tests.support.emulated import chat_lines, emulator_state
from tests.support.processes import run


def _submit(env: dict[str, str], path: Path, *extra: str) -> dict[str, Any]:
    done = run(["submit", str(path), "--cache", "--wait", "--json", *extra], env)
    assert done.returncode == 0, done.stderr
    batch: dict[str, Any] = orjson.loads(done.stdout)
    return batch


def test_resubmitted_file_sends_only_changed_lines(
    env: dict[str, str], emulator: Any, tmp_path: Path
) -> None:
    lines = chat_lines(20)
    first = _submit(env, write_jsonl(tmp_path / "a.jsonl", lines))
    assert first["cached"] == 0
    lines[3]["body"]["max_tokens"] = 60
    lines[7]["body"]["messages"][0]["content"] = "Something else."
    changed = write_jsonl(tmp_path / "b.jsonl", lines)
    # The estimate counts, before the submit, the requests the cache will answer.
    estimate = run(["estimate", str(changed), "--cache", "--cache-ttl", "1d", "--json"], env)
    assert estimate.returncode == 0, estimate.stderr
    (entry,) = orjson.loads(estimate.stdout)["models"]
    assert (entry["model"], entry["requests"], entry["cached"]) == ("openai/gpt-4o-mini", 20, 18)
    compared = run(["estimate", str(changed), "--cache", "-m", "openai/gpt-4o", "--json"], env)
    assert [m["cached"] for m in orjson.loads(compared.stdout)["models"]] == [0]
    # A model that refuses a line is compared too (its cache count stays 0).
    refusing = [dict(lines[0], body=dict(lines[0]["body"], logprobs=True)), *lines[1:]]
    groq = "groq/llama-3.1-8b-instant"
    args = ["estimate", str(write_jsonl(tmp_path / "c.jsonl", refusing)), "--cache", "--json"]
    both = run([*args, "-m", "openai/gpt-4o-mini", "-m", groq], env)
    assert both.returncode == 0, both.stderr
    seen = {m["model"]: m for m in orjson.loads(both.stdout)["models"]}
    assert (seen[groq]["refused"], seen[groq]["cached"]) == (1, 0)
    assert seen["openai/gpt-4o-mini"]["cached"] == 17
    second = _submit(env, changed, "--cache-ttl", "1d")
    assert second["cached"] == 18 and second["request_counts"]["completed"] == 20
    sent = sorted(b["request_count"] for b in emulator_state(emulator)["batches"])
    assert sent == [2, 20]

    unified = run(["results", second["id"], "--format", "unified"], env)
    rows = [orjson.loads(line) for line in unified.stdout.splitlines()]
    assert [r["custom_id"] for r in rows if not r["cached"]] == ["r-00003", "r-00007"]
    assert all(r["cost"]["total"] == 0 for r in rows if r["cached"])

    status = run(["status", second["id"], "--json"], env)
    assert orjson.loads(status.stdout)["cached"] == 18


def test_bad_cache_ttl_is_refused_before_anything_is_stored(
    env: dict[str, str], tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", chat_lines(2))
    bad = run(["submit", str(path), "--cache", "--cache-ttl", "soon"], env)
    assert bad.returncode != 0 and "--cache-ttl" in bad.stderr
    alone = run(["submit", str(path), "--cache-ttl", "1d"], env)
    assert alone.returncode != 0 and "--cache-ttl" in alone.stderr and "--cache" in alone.stderr
    assert orjson.loads(run(["list", "--json"], env).stdout) == []
