"""SIGKILL at the worst moments: nothing lost, nothing sent or counted twice."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.support.database import scalar
from tests.support.emulated import chat_lines, emulator_state, open_engine
from tests.support.processes import run, start, wait_for
from unibatch.config import Settings
from unibatch.providers.registry import spec_of
from unibatch.store.tables import batches, jobs, requests, results

pytestmark = pytest.mark.slow


def worker_env(url: str, emulator: Any, **extra: str) -> dict[str, str]:
    return {
        "UNIBATCH_DATABASE_URL": url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": emulator.base_url("openai"),
        "UNIBATCH_POLL_SCHEDULE": "0.1",
        "UNIBATCH_LEASE_SECONDS": "2",
        "UNIBATCH_WORKER_IDLE": "0.05",
        **extra,
    }


def test_worker_killed_mid_ingest_loses_nothing(
    database_url: str, emulator: Any, fast_settings: Settings, tmp_path: Path
) -> None:
    total = 20_000

    async def create() -> str:
        engine = await open_engine(database_url, emulator, fast_settings)
        try:
            return await engine.create_batch(chat_lines(total))
        finally:
            await engine.aclose()

    batch_id = asyncio.run(create())
    # Slow the download so the kill lands while rows are still arriving.
    emulator.emulators["openai"].config.download_chunk_delay = 0.03
    env = worker_env(database_url, emulator, UNIBATCH_INGEST_CHUNK="500")
    landed = sa.select(sa.func.count()).select_from(results).where(results.c.batch_id == batch_id)

    first = start(["worker"], env, tmp_path / "worker1.log")
    try:
        wait_for(lambda: 0 < scalar(database_url, landed) < total // 2, 120, "ingest to start")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    partial = scalar(database_url, landed)
    assert 0 < partial < total
    phase = sa.select(jobs.c.phase).where(jobs.c.batch_id == batch_id)
    assert scalar(database_url, phase) == "ingesting"

    emulator.emulators["openai"].config.download_chunk_delay = 0.0
    result = run(["wait", batch_id, "--json"], env, timeout=180)
    assert result.returncode == 0, result.stderr
    batch = orjson.loads(result.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"]["succeeded"] == total
    # Exactly one result per request: as many rows as requests, and every request matched.
    assert scalar(database_url, landed) == total
    matched = (
        sa.select(sa.func.count())
        .select_from(
            requests.join(
                results,
                sa.and_(
                    results.c.batch_id == requests.c.batch_id,
                    results.c.custom_id == requests.c.custom_id,
                ),
            )
        )
        .where(requests.c.batch_id == batch_id)
    )
    assert scalar(database_url, matched) == total


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "openai/gpt-4o-mini"),
        # A Message Batch carries no tag: it is found by size and proven by its results.
        ("anthropic", "anthropic/claude-haiku-4-5"),
    ],
)
def test_submitter_killed_after_provider_create_adopts_the_batch(
    database_url: str, emulator: Any, tmp_path: Path, provider: str, model: str
) -> None:
    fake = emulator.emulators[provider]
    fake.config.create_delay = 30.0  # the create is recorded, its answer never arrives
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(12, model)))
    spec = spec_of(provider)
    env = worker_env(
        database_url,
        emulator,
        **{spec.key_env[0]: "test-key", spec.base_url_env: emulator.base_url(provider)},
    )

    def created() -> list[dict[str, Any]]:
        return list(emulator_state(emulator, provider)["batches"])

    submitter = start(["submit", str(path), "--wait", "--json"], env, tmp_path / "submit.log")
    try:
        wait_for(lambda: len(created()) == 1, 60, "the provider's create")
    finally:
        submitter.send_signal(signal.SIGKILL)
        submitter.wait()
    assert scalar(database_url, sa.select(jobs.c.phase)) == "submitting"
    batch_id = scalar(database_url, sa.select(jobs.c.batch_id))

    fake.config.create_delay = 0.0
    result = run(["wait", batch_id, "--json"], env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert orjson.loads(result.stdout)["request_counts"]["succeeded"] == 12
    assert len(created()) == 1  # adopted, not sent again
    assert scalar(database_url, sa.select(jobs.c.provider_batch_id)) == created()[0]["id"]


def test_submit_killed_mid_import_leaves_a_failed_batch_that_never_runs(
    database_url: str, emulator: Any, tmp_path: Path
) -> None:
    # The requests arrive through a pipe the test holds open, so the import stops where
    # the test wants it: after two committed chunks, waiting for more lines.
    pipe_path = tmp_path / "requests.jsonl"
    os.mkfifo(pipe_path)
    env = worker_env(database_url, emulator, UNIBATCH_INGEST_CHUNK="50")
    assert run(["db", "upgrade"], env).returncode == 0
    stored = sa.select(sa.func.count()).select_from(requests)
    submitter = start(["submit", str(pipe_path)], env, tmp_path / "submit.log")
    try:
        with pipe_path.open("wb") as pipe:
            pipe.write(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(120)))
            pipe.flush()
            wait_for(lambda: scalar(database_url, stored) == 100, 60, "two chunks stored")
            submitter.send_signal(signal.SIGKILL)
            submitter.wait()
    finally:
        if submitter.poll() is None:
            submitter.kill()
    status = sa.select(batches.c.status)
    assert scalar(database_url, status) == "validating"

    # A worker fails it once its importer's lease has run out, and never sends it.
    worker = start(["worker"], env, tmp_path / "worker.log")
    try:
        wait_for(lambda: scalar(database_url, status) == "failed", 60, "the sweep")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert scalar(database_url, stored) == 0
    assert scalar(database_url, sa.select(sa.func.count()).select_from(jobs)) == 0
    assert emulator_state(emulator)["batches"] == []
