"""A real-time batch for an OpenAI-compatible server without a Batch API survives a SIGKILL
of its worker: every request answered exactly once, and the RPM limit held throughout."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from tests.integration.test_realtime_runner import max_in_window
from tests.support.database import scalar
from tests.support.emulated import chat_lines, open_engine
from tests.support.processes import run, start, wait_for
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.store.tables import realtime_sends, results

pytestmark = pytest.mark.slow

TOTAL = 2000
# Answers the emulator gives before it holds the rest (the kill lands then).
BEFORE_KILL = 700
CONCURRENCY = 8


def test_local_batch_survives_sigkill_each_request_answered_once(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings, tmp_path: Path
) -> None:
    # The emulator's minute lasts one second (time_scale 1/60): past 200 requests within
    # one second it answers 429. The worker may send 6,000 a minute: 100 a second, at
    # most a quarter of a second's worth at once (125 in any second, sent evenly; the
    # rest of the margin is for requests that arrive bunched on a loaded machine).
    emulator.config.update(
        {"time_scale": 1 / 60, "max_rpm": 200, "max_realtime_answers": BEFORE_KILL}
    )
    gate = emulator.emulators["local"].realtime

    async def create() -> str:
        engine = await open_engine(database_url, emulator, fast_settings)
        try:
            return await engine.create_batch(chat_lines(TOTAL, "local/llama3.1:8b"))
        finally:
            await engine.aclose()

    batch_id = asyncio.run(create())
    env = {
        "UNIBATCH_DATABASE_URL": database_url,
        "UNIBATCH_LOCAL_BASE_URL": emulator.base_url("local"),
        "UNIBATCH_REALTIME_LIMITS": orjson.dumps(
            {"local": {"rpm": 6000, "concurrency": CONCURRENCY}}
        ).decode(),
        "UNIBATCH_POLL_SCHEDULE": "0.1",
        "UNIBATCH_LEASE_SECONDS": "2",
        "UNIBATCH_WORKER_IDLE": "0.05",
    }
    stored = sa.select(sa.func.count()).select_from(results).where(results.c.batch_id == batch_id)
    marked = (
        sa.select(sa.func.count())
        .select_from(realtime_sends)
        .where(realtime_sends.c.batch_id == batch_id)
    )

    worker = start(["worker"], env, tmp_path / "worker1.log")
    try:
        # Every sender waits on the emulator: all answers given so far are stored (a
        # sender takes its next request only once its answer is committed).
        wait_for(lambda: gate.held == CONCURRENCY, 120, "every sender held at the emulator")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    # The requests in flight die with their client: dropped, never answered.
    wait_for(lambda: gate.dropped == CONCURRENCY and gate.held == 0, 30, "held requests dropped")
    assert scalar(database_url, stored) == BEFORE_KILL
    assert scalar(database_url, marked) == BEFORE_KILL + CONCURRENCY

    emulator.config.update({"max_realtime_answers": None})
    result = run(["wait", batch_id, "--json"], env, timeout=180)
    assert result.returncode == 0, result.stderr
    batch = orjson.loads(result.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"]["succeeded"] == TOTAL
    assert scalar(database_url, stored) == TOTAL

    # Exactly once at the server: 2,000 distinct bodies, each answered once. The eight in
    # flight at the kill reached it twice (their first try was dropped unanswered).
    assert len(gate.answers) == TOTAL and set(gate.answers.values()) == {1}
    twice = {key for key, n in gate.received.items() if n == 2}
    assert len(twice) == CONCURRENCY and set(gate.received.values()) <= {1, 2}
    sends = asyncio.run(_send_counts(database_url, fast_settings, emulator, batch_id))
    assert sorted(sends.values()).count(2) == CONCURRENCY and len(sends) == TOTAL
    # The RPM limit, counted at the emulator: no 429, never more than 200 in a second.
    assert gate.limited == 0
    assert max_in_window(gate.admitted_at, 1.0) <= 200


async def _send_counts(
    url: str, settings: Settings, emulator: RunningEmulator, batch_id: str
) -> dict[str, int]:
    engine = await open_engine(url, emulator, settings)
    try:
        return await engine.store.send_counts(batch_id)
    finally:
        await engine.aclose()
