"""Queue limits: a file far over the provider's enqueued-token limit is metered into the
OpenAI emulator as its queue frees up, by one worker or several sharing PostgreSQL, and a
configured limit that is too high is corrected by the provider's first refusal."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines, emulator_state, open_engine
from tests.support.processes import run
from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine.queue_tokens import input_tokens
from unibatch.store.queue import Limit, Need, lock_key
from unibatch.store.tables import queue_limits
from unibatch.types import BatchStatus

MODEL = "gpt-4o-mini"
# The emulator's enqueued-token limit per model.
LIMIT = 120
# Batches stay in the queue long enough (about a second) for jobs to overlap there.
QUEUED = {"max_enqueued_tokens": LIMIT, "in_progress_seconds": 20.0}


def _lines(n: int = 100) -> list[dict]:
    return chat_lines(n, model=f"openai/{MODEL}")


def _tokens(lines: list[dict]) -> int:
    return sum(
        input_tokens("openai", MODEL, line["url"], line["body"], exact=True) for line in lines
    )


def _settings(fast_settings: Settings, limit: int = LIMIT) -> Settings:
    return fast_settings.model_copy(
        update={"queue_limits": {f"openai/{MODEL}.enqueued_tokens": limit}}
    )


def _assert_metered(emulator: RunningEmulator, *, refused: int = 0) -> None:
    state = emulator_state(emulator)
    queue = state["queue"]
    assert 0 < queue["peak_enqueued_tokens"][MODEL] <= LIMIT
    assert queue["refused"].get("enqueued_tokens", 0) == refused
    failed = [b for b in state["batches"] if b["status"] == "failed"]
    assert len(failed) == refused
    assert len(state["batches"]) > 5  # metered in many batches, not sent at once


@pytest.mark.parametrize("emulator", [QUEUED], indirect=True)
async def test_five_times_the_limit_all_succeed_within_it(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    lines = _lines()
    assert _tokens(lines) >= 5 * LIMIT
    engine = await open_engine(database_url, emulator, _settings(fast_settings))
    try:
        batch_id = await engine.create_batch(lines)
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == len(lines)
    _assert_metered(emulator)


@pytest.mark.postgres
@pytest.mark.parametrize("emulator", [QUEUED], indirect=True)
async def test_two_workers_on_postgres_share_one_budget(
    postgres_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    settings = _settings(fast_settings).model_copy(update={"worker_concurrency": 8})
    engines = [await open_engine(postgres_url, emulator, settings) for _ in range(2)]
    stop = asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    lines = _lines(200)
    assert _tokens(lines) >= 5 * LIMIT
    try:
        batch_id = await engines[0].create_batch(lines)
        workers = [asyncio.create_task(e.run_worker(stop)) for e in engines]

        async def done() -> bool:
            return (await engines[0].get_batch(batch_id)).status.terminal

        await until(done, "the batch to end", timeout=180)
        batch = await engines[0].get_batch(batch_id)
    finally:
        stop.set()
        if workers:
            await asyncio.wait(workers, timeout=30)
        for engine in engines:
            await engine.aclose()
    assert all(w.done() and w.exception() is None for w in workers)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == len(lines)
    _assert_metered(emulator)


@pytest.mark.parametrize("emulator", [QUEUED], indirect=True)
async def test_a_too_high_limit_is_corrected_by_the_first_refusal(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # Configured at five times what the provider allows: the first jobs are too big.
    too_high = 5 * LIMIT
    engine = await open_engine(database_url, emulator, _settings(fast_settings, too_high))
    lines = _lines()
    try:
        batch_id = await engine.create_batch(lines)
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
        learned = await engine.store.learned_limits()
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == len(lines)
    row = learned["openai"][(MODEL, "enqueued_tokens")]
    assert row["learned"] <= LIMIT < too_high
    assert row["configured"] == too_high
    assert "token_limit_exceeded" in row["reason"]
    state = emulator_state(emulator)
    refusals = state["queue"]["refused"]["enqueued_tokens"]
    # Corrected at once: only the refusals before the lesson reached the limit's level.
    assert 1 <= refusals <= 3
    assert state["queue"]["peak_enqueued_tokens"][MODEL] <= LIMIT


@pytest.mark.parametrize("emulator", [QUEUED], indirect=True)
async def test_a_learned_limit_lasts_until_the_deployment_changes_its_own(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    too_high = 5 * LIMIT
    engine = await open_engine(sqlite_url, emulator, _settings(fast_settings, too_high))
    try:
        first = await engine.create_batch(_lines(30))
        await engine.wait(first, interval=0.05, timeout=120)
        # The next batch is planned with the learned limit: no job is over it.
        second = await engine.create_batch(_lines(30))
        planned = await engine.store.jobs_of(second)
    finally:
        await engine.aclose()
    learned = (await _learned(sqlite_url, emulator, fast_settings, too_high))["learned"]
    assert all(job.input_tokens <= learned for job in planned)
    # A deployment that sets another figure is taken at its word.
    engine = await open_engine(sqlite_url, emulator, _settings(fast_settings, 10 * LIMIT))
    try:
        third = await engine.create_batch(_lines(100))
        assert max(job.input_tokens for job in await engine.store.jobs_of(third)) > learned
    finally:
        await engine.aclose()


async def _learned(
    url: str, emulator: RunningEmulator, fast_settings: Settings, limit: int
) -> dict:
    engine = await open_engine(url, emulator, _settings(fast_settings, limit))
    try:
        return dict((await engine.store.learned_limits())["openai"][(MODEL, "enqueued_tokens")])
    finally:
        await engine.aclose()


@pytest.mark.parametrize(
    "emulator", [{"max_enqueued_tokens": LIMIT, "in_progress_seconds": 36000.0}], indirect=True
)
async def test_status_shows_the_jobs_waiting_for_capacity_and_why(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    engine = await open_engine(sqlite_url, emulator, _settings(fast_settings))
    try:
        # Few enough jobs for one pass of the worker to look at each.
        batch_id = await engine.create_batch(_lines(40))
        jobs = await engine.store.jobs_of(batch_id)
        planned = len(jobs)
        await engine.run_once(batch_id=batch_id)
        batch = await engine.get_batch(batch_id)
        sent = [j for j in await engine.store.jobs_of(batch_id) if j.phase != "pending"]
    finally:
        await engine.aclose()
    # With a limit in force, OpenAI requests are counted with the model's tokenizer.
    assert sum(job.input_tokens for job in jobs) == _tokens(_lines(40))
    # Two jobs of at most half the limit each are in flight at the provider; the rest wait.
    assert len(sent) == 2
    held = sum(job.input_tokens for job in sent)
    assert held <= LIMIT
    assert batch.waiting is not None
    assert batch.waiting.jobs == planned - 2
    waiting_requests = 40 - sum(job.request_count for job in sent)
    assert batch.waiting.requests == waiting_requests
    (reason,) = batch.waiting.reasons
    assert f"openai/{MODEL} enqueued tokens {held} in flight of a 120 limit" in reason
    env = {"UNIBATCH_DATABASE_URL": sqlite_url}
    shown = run(["status", batch_id, "--json"], env)
    assert shown.returncode == 0, shown.stderr
    waiting = json.loads(shown.stdout)["waiting_for_capacity"]
    assert waiting == {"jobs": planned - 2, "requests": waiting_requests, "reasons": [reason]}
    table = run(["status", batch_id], env)
    assert "waiting for capacity" in table.stdout and "enqueued tokens" in table.stdout


async def test_a_request_over_a_learned_limit_waits_until_the_deployment_decides(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    engine = await open_engine(sqlite_url, emulator, _settings(fast_settings, 1000))
    try:
        waits = await engine.create_batch(_lines(1))
        # A refusal taught a limit below the request after it was planned (another
        # application's batches filled the queue, say).
        async with engine.store.engine.begin() as conn:
            await conn.execute(
                sa.insert(queue_limits).values(
                    provider="openai",
                    scope=MODEL,
                    kind="enqueued_tokens",
                    learned=2,
                    configured=1000,
                    learned_at=0.0,
                    reason="token_limit_exceeded: test",
                )
            )
        await engine.run_once(batch_id=waits)
        (job,) = await engine.store.jobs_of(waits)
        assert job.phase == "pending" and "more than the 2 limit" in str(job.last_error)
        assert emulator_state(emulator)["batches"] == []
    finally:
        await engine.aclose()
    # The deployment's own figure replaces the lesson: the request is sent.
    engine = await open_engine(sqlite_url, emulator, _settings(fast_settings, 900))
    try:
        # Past the waiting job's next look (`queue_recheck`), without waiting for it.
        clock = ShiftedClock()
        clock.advance(fast_settings.queue_recheck)
        engine.ctx.clock = clock
        done = await engine.wait(waits, interval=0.05, timeout=60)
        assert done.request_counts.succeeded == 1
    finally:
        await engine.aclose()


@pytest.mark.postgres
async def test_a_claim_waits_for_another_workers_claim_and_counts_it(
    postgres_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    engine = await open_engine(postgres_url, emulator, _settings(fast_settings))
    try:
        batch_id = await engine.create_batch(_lines(40))  # four jobs of 60 tokens
        (mine,) = await engine.store.claim_jobs(
            "w2", engine.ctx.clock(), lease=60, batch_id=batch_id, limit=1
        )
        # Another worker is mid-claim: it holds the provider's queue lock...
        async with engine.store.engine.connect() as conn, conn.begin():
            await conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("openai")}
            )
            # ...and already has jobs in flight (not committed yet).
            await conn.execute(
                sa.text("UPDATE jobs SET phase = 'running' WHERE batch_id = :b AND id <> :m"),
                {"b": batch_id, "m": mine.id},
            )
            claim = asyncio.create_task(
                engine.store.claim_capacity(
                    mine.id,
                    "w2",
                    Need(mine.model, mine.input_tokens, mine.request_count),
                    [Limit("openai", MODEL, "enqueued_tokens", LIMIT)],
                    [Limit("openai", MODEL, "enqueued_tokens", LIMIT)],
                    attempts=1,
                    retry_at=0.0,
                )
            )

            async def blocked() -> bool:
                return await _waiting_on_advisory_lock(postgres_url)

            await until(blocked, "the second claim to wait for the queue lock", timeout=30)
            assert not claim.done()
        # Once the first claim commits, the second sees its jobs in flight and waits.
        verdict = await asyncio.wait_for(claim, 30)
        assert not verdict.ok and "in flight" in str(verdict.reason)
    finally:
        await engine.aclose()


async def _waiting_on_advisory_lock(url: str) -> bool:
    from unibatch.store.db import create_engine

    probe = create_engine(url)
    try:
        async with probe.connect() as conn:
            found = await conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
            )
            return bool(found.scalar())
    finally:
        await probe.dispose()
