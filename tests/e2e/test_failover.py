"""Failover through the CLI, as users run it, on SQLite and PostgreSQL: a failed OpenAI
batch moves to Claude, and a worker killed while creating the fallback's provider batch
neither loses it nor sends it twice."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.e2e.test_crash_safety import worker_env
from tests.e2e.test_retries import unified, write
from tests.support.clock import ShiftedClock
from tests.support.database import scalar
from tests.support.emulated import chat_lines, emulator_state
from tests.support.processes import run, start, wait_for
from unibatch.store.tables import jobs

pytestmark = pytest.mark.slow
HAIKU = "anthropic/claude-haiku-4-5"


def _env(database_url: str, emulator: Any) -> dict[str, str]:
    return {
        **worker_env(database_url, emulator),
        "ANTHROPIC_API_KEY": "test-key",
        "ANTHROPIC_BASE_URL": emulator.base_url("anthropic"),
    }


@pytest.mark.parametrize("emulator", [{"validating_seconds": 3600.0}], indirect=True)
def test_worker_killed_while_failing_over_sends_the_fallback_once(
    database_url: str, emulator: Any, emulator_clock: ShiftedClock, tmp_path: Path
) -> None:
    emulator.openai.config.update({"fail_batches": 1})
    env = _env(database_url, emulator)
    path = write(tmp_path / "in.jsonl", chat_lines(40))
    options = ["--fallback-model", HAIKU, "--stuck-after", "6h"]
    submitted = run(["submit", str(path), *options], env)
    assert submitted.returncode == 0, submitted.stderr
    batch_id = submitted.stdout.strip()

    def claude_batches() -> list[dict[str, Any]]:
        return list(emulator_state(emulator, "anthropic")["batches"])

    worker = start(["worker"], env, tmp_path / "worker.log")
    try:
        wait_for(lambda: len(emulator_state(emulator)["batches"]) == 1, 60, "the first batch")
        # The fallback's create reaches Anthropic, whose answer never comes back in time
        # (the knob is shared, but OpenAI's batch exists already).
        emulator.openai.config.update({"create_delay": 60.0})
        emulator_clock.advance(7200.0)  # OpenAI's batch fails its validation
        wait_for(lambda: len(claude_batches()) == 1, 60, "the fallback's create")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    fallback = sa.select(jobs.c.phase).where(
        jobs.c.batch_id == batch_id, jobs.c.provider == "anthropic"
    )
    assert scalar(database_url, fallback) == "submitting"

    emulator.openai.config.update({"create_delay": 0.0, "validating_seconds": 0.5})
    emulator_clock.advance(7200.0)
    done = run(["wait", batch_id, "--json"], env, timeout=300)
    assert done.returncode == 0, done.stderr
    batch = orjson.loads(done.stdout)
    assert (batch["status"], batch["request_counts"]["succeeded"]) == ("completed", 40)
    # Found again by its tag after the restart: one Claude batch, each request once.
    assert [b["request_count"] for b in claude_batches()] == [40]
    got = unified(env, batch_id)
    assert {(r["provider"], r["model"], r["attempts"]) for r in got.values()} == {
        ("anthropic", "claude-haiku-4-5", 2)
    }
    assert {r["history"][0]["model"] for r in got.values()} == {"gpt-4o-mini"}
    count = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.batch_id == batch_id)
    assert scalar(database_url, count) == 2


def test_bad_stuck_after_is_refused(database_url: str, emulator: Any, tmp_path: Path) -> None:
    path = write(tmp_path / "in.jsonl", chat_lines(1))
    env = _env(database_url, emulator)
    bad = run(["submit", str(path), "--fallback-model", HAIKU, "--stuck-after", "soon"], env)
    assert bad.returncode != 0
    assert "'soon' is not a duration" in bad.stderr
