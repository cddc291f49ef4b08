"""Retries through the CLI, as users run them, on SQLite and PostgreSQL: a large batch
with a per-request failure rate ends with every request answered, and a worker killed
between a failure and its follow-up job neither loses the retry nor sends it twice."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.e2e.test_crash_safety import worker_env
from tests.support.clock import ShiftedClock
from tests.support.database import scalar
from tests.support.emulated import chat_lines, emulator_state
from tests.support.processes import run, start, wait_for
from unibatch.emulators.kit import attempts_needed
from unibatch.store.tables import attempts, jobs, results

pytestmark = pytest.mark.slow
RATE = 0.2
SEED = 0


def write(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def unified(env: dict[str, str], batch_id: str) -> dict[str, dict[str, Any]]:
    shown = run(["results", batch_id, "--format", "unified"], env, timeout=300)
    assert shown.returncode == 0, shown.stderr
    return {r["custom_id"]: r for r in map(orjson.loads, shown.stdout.splitlines())}


def billed(url: str, batch_id: str) -> float:
    """Every attempt's cost as stored: the results and the attempts they replaced."""
    total = 0.0
    for table in (results, attempts):
        query = sa.select(sa.func.sum(table.c.cost_input + table.c.cost_output)).where(
            table.c.batch_id == batch_id
        )
        total += float(scalar(url, query) or 0.0)
    return total


def test_every_request_succeeds_after_retries(
    database_url: str, emulator: Any, tmp_path: Path
) -> None:
    total = 5000
    emulator.openai.config.update({"retryable_failure_rate": RATE})
    lines = chat_lines(total)
    needed = {line["custom_id"]: attempts_needed(SEED, line["custom_id"], RATE) for line in lines}
    rounds = max(needed.values())
    env = worker_env(database_url, emulator, UNIBATCH_RETRY_BACKOFF="0")
    path = write(tmp_path / "in.jsonl", lines)

    done = run(["submit", str(path), "--max-attempts", str(rounds), "--wait", "--json"], env, 600)
    assert done.returncode == 0, done.stderr
    batch = orjson.loads(done.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"]["succeeded"] == total

    got = unified(env, batch["id"])
    assert {cid: r["attempts"] for cid, r in got.items()} == needed
    assert all(r["status"] == "succeeded" for r in got.values())
    assert all(len(r["history"]) == r["attempts"] - 1 for r in got.values())
    retried = sum(1 for n in needed.values() if n > 1)
    assert 0.15 * total < retried < 0.25 * total
    # Each round went to the provider once, holding exactly what was still failing.
    sent = emulator_state(emulator)["batches"]
    assert [b["request_count"] for b in sent] == [
        sum(1 for n in needed.values() if n > k) for k in range(rounds)
    ]
    # Costs add up: the batch's is every attempt billed, and each record's holds its own.
    cost = batch["cost"]["total"]
    assert cost == pytest.approx(billed(database_url, batch["id"]))
    assert cost == pytest.approx(sum(r["cost"]["total"] for r in got.values()))
    assert batch["usage"]["output_tokens"] == sum(r["usage"]["output_tokens"] for r in got.values())


def follow_ups(url: str, batch_id: str) -> int:
    query = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.batch_id == batch_id)
    return int(scalar(url, query)) - 1


@pytest.mark.parametrize("emulator", [{"in_progress_seconds": 3600.0}], indirect=True)
def test_worker_killed_while_sending_a_follow_up_sends_it_once(
    database_url: str, emulator: Any, emulator_clock: ShiftedClock, tmp_path: Path
) -> None:
    emulator.openai.config.update({"retryable_failure_rate": RATE})
    lines = chat_lines(200)
    needed = {line["custom_id"]: attempts_needed(SEED, line["custom_id"], RATE) for line in lines}
    env = worker_env(database_url, emulator, UNIBATCH_RETRY_BACKOFF="0")
    submitted = run(
        ["submit", str(write(tmp_path / "in.jsonl", lines)), "--max-attempts", "10"], env
    )
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()

    def sent() -> list[dict[str, Any]]:
        return list(emulator_state(emulator)["batches"])

    worker = start(["worker"], env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: len(sent()) == 1, 60, "the first provider batch")
        # The follow-up's create reaches the provider, whose answer never comes back.
        emulator.openai.config.update({"create_delay": 60.0})
        emulator_clock.advance(7200.0)  # the first batch ends, its failures land
        wait_for(lambda: len(sent()) == 2, 60, "the follow-up's create")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    phase = sa.select(jobs.c.phase).where(jobs.c.batch_id == batch_id).order_by(jobs.c.id.desc())
    assert scalar(database_url, phase) == "submitting"
    assert follow_ups(database_url, batch_id) == 1

    emulator.openai.config.update({"create_delay": 0.0, "in_progress_seconds": 1.5})
    emulator_clock.advance(7200.0)
    done = run(["wait", batch_id, "--json"], env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["request_counts"]["succeeded"] == 200
    got = unified(env, batch_id)
    assert {cid: r["attempts"] for cid, r in got.items()} == needed
    # Nothing sent twice: one provider batch per round, each request once per attempt.
    rounds = max(needed.values())
    assert [b["request_count"] for b in sent()] == [
        sum(1 for n in needed.values() if n > k) for k in range(rounds)
    ]
    assert follow_ups(database_url, batch_id) == rounds - 1


def test_worker_killed_while_ingesting_failures_loses_no_retry(
    database_url: str, emulator: Any, tmp_path: Path
) -> None:
    total = 4000
    emulator.openai.config.update({"retryable_failure_rate": RATE})
    lines = chat_lines(total)
    needed = {line["custom_id"]: attempts_needed(SEED, line["custom_id"], RATE) for line in lines}
    env = worker_env(
        database_url, emulator, UNIBATCH_RETRY_BACKOFF="0", UNIBATCH_INGEST_CHUNK="200"
    )
    submitted = run(
        ["submit", str(write(tmp_path / "in.jsonl", lines)), "--max-attempts", "10"], env
    )
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()
    landed = sa.select(sa.func.count()).select_from(results).where(results.c.batch_id == batch_id)
    # Slow downloads, so the kill lands with some failures recorded and others not.
    emulator.openai.config.update({"download_chunk_delay": 0.05})
    worker = start(["worker"], env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: 0 < scalar(database_url, landed) < total // 2, 120, "ingest to start")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    assert follow_ups(database_url, batch_id) == 0

    emulator.openai.config.update({"download_chunk_delay": 0.0})
    done = run(["wait", batch_id, "--json"], env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["request_counts"]["succeeded"] == total
    got = unified(env, batch_id)
    assert {cid: r["attempts"] for cid, r in got.items()} == needed
    rounds = max(needed.values())
    assert [b["request_count"] for b in emulator_state(emulator)["batches"]] == [
        sum(1 for n in needed.values() if n > k) for k in range(rounds)
    ]


def test_cli_retry_on_another_model(database_url: str, emulator: Any, tmp_path: Path) -> None:
    lines = chat_lines(4)
    for line in lines[:3]:
        line["body"]["messages"][0]["content"] = "emulate-error:400"
    lines[2]["body"]["temperature"] = 1.5  # more than Claude takes
    env = {
        **worker_env(database_url, emulator, UNIBATCH_RETRY_BACKOFF="0"),
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": emulator.base_url("anthropic"),
    }
    path = write(tmp_path / "in.jsonl", lines)
    first = run(["submit", str(path), "--wait", "--json"], env)
    assert first.returncode == 0, first.stderr
    batch_id = orjson.loads(first.stdout)["id"]
    assert orjson.loads(first.stdout)["request_counts"]["errored"] == 3

    # The marker fails them on Claude too, so the rerun ends with errors again.
    claude = ["--model", "anthropic/claude-haiku-4-5", "--max-attempts", "1"]
    retried = run(["retry", batch_id, "--status", "errored", *claude, "--wait", "--json"], env)
    assert retried.returncode == 0, retried.stderr
    assert "r-00002: not retried:" in retried.stderr and "temperature" in retried.stderr
    assert orjson.loads(retried.stdout)["status"] == "completed"
    got = unified(env, batch_id)
    assert [(got[c]["provider"], got[c]["attempts"]) for c in sorted(got)] == [
        ("anthropic", 2),
        ("anthropic", 2),
        ("openai", 1),
        ("openai", 1),
    ]
    again = run(["retry", batch_id, "--status", "succeeded"], env)
    assert again.returncode == 2 and "cannot be retried" in again.stderr
