"""Automatic retries: retryable failures go out again in follow-up jobs of the same batch,
on SQLite and PostgreSQL, against the emulators over real HTTP."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from tests.support.emulated import chat_lines, emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.emulators.kit import attempts_needed
from unibatch.engine import Engine
from unibatch.store.tables import jobs
from unibatch.types import BatchStatus, RequestStatus, Result

RATE = 0.3
SEED = 0


def flaky(emulator: RunningEmulator, rate: float = RATE) -> None:
    emulator.openai.config.update({"retryable_failure_rate": rate})


async def _results(engine: Engine, batch_id: str) -> dict[str, Result]:
    return {r.custom_id: r async for r in engine.results(batch_id)}


async def test_retryable_failures_are_sent_again_until_they_succeed(
    engine: Engine, emulator: RunningEmulator
) -> None:
    flaky(emulator)
    lines = chat_lines(120)
    needed = {line["custom_id"]: attempts_needed(SEED, line["custom_id"], RATE) for line in lines}
    rounds = max(needed.values())
    assert rounds >= 3  # the seed makes some requests fail twice in a row
    batch_id = await engine.create_batch(lines, max_attempts=rounds)
    batch = await engine.wait(batch_id, interval=0.05, timeout=120)

    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 120
    got = await _results(engine, batch_id)
    assert {cid: r.attempts for cid, r in got.items()} == needed
    for cid, result in got.items():
        assert result.status is RequestStatus.SUCCEEDED
        assert [a.attempt for a in result.history] == list(range(1, needed[cid]))
        assert all(a.error is not None and a.error.retryable for a in result.history)
        assert all(a.provider == "openai" for a in result.history)
    # One provider batch per round, each holding only what was still failing.
    sent = emulator_state(emulator)["batches"]
    assert len(sent) == rounds
    assert [b["request_count"] for b in sent] == [
        sum(1 for n in needed.values() if n > k) for k in range(rounds)
    ]
    # The batch's cost is every result's (each including its earlier attempts).
    assert batch.cost.total == pytest.approx(sum(r.cost.total for r in got.values()))
    assert batch.usage.output_tokens == sum(r.usage.output_tokens for r in got.values())


@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("anthropic/claude-haiku-4-5", "overloaded"),
        ("gemini/gemini-2.5-flash", "overloaded"),
        ("xai/grok-3-mini", "internal error"),
    ],
)
async def test_other_providers_retryable_failures_are_retried(
    engine: Engine, emulator: RunningEmulator, model: str, said: str
) -> None:
    provider = model.split("/")[0]
    emulator.emulators[provider].config.update({"retryable_failure_rate": RATE})
    # Their ids name the job or the position, so their emulators know a retry by its key
    # or content; the seed still makes every run fail the same requests.
    lines = chat_lines(120, model)
    batch_id = await engine.create_batch(lines, max_attempts=10)
    batch = await engine.wait(batch_id, interval=0.05, timeout=120)
    assert batch.request_counts.succeeded == 120
    got = await _results(engine, batch_id)
    sent = emulator_state(emulator, provider)["batches"]
    assert len(sent) > 2
    # Every request sent once per attempt, and each attempt but the last on record.
    assert sum(r.attempts for r in got.values()) == sum(b["request_count"] for b in sent)
    for result in got.values():
        assert len(result.history) == result.attempts - 1
        assert all(a.error and a.error.retryable for a in result.history)
        assert all(said in a.error.message.lower() for a in result.history if a.error)


async def test_max_attempts_is_respected(engine: Engine, emulator: RunningEmulator) -> None:
    flaky(emulator)
    lines = chat_lines(120)
    needed = {line["custom_id"]: attempts_needed(SEED, line["custom_id"], RATE) for line in lines}
    batch_id = await engine.create_batch(lines, max_attempts=2)
    batch = await engine.wait(batch_id, interval=0.05, timeout=120)
    got = await _results(engine, batch_id)
    for cid, result in got.items():
        assert result.attempts == min(needed[cid], 2)
        if needed[cid] > 2:
            assert result.status is RequestStatus.ERRORED
            assert result.error.retryable
    failing = sum(1 for n in needed.values() if n > 2)
    assert failing > 0
    assert batch.request_counts.errored == failing
    assert len(emulator_state(emulator)["batches"]) == 2


async def test_permanent_errors_are_not_retried(engine: Engine, emulator: RunningEmulator) -> None:
    lines = chat_lines(6)
    lines[0]["body"]["messages"][0]["content"] = "emulate-error:400"  # type: ignore[index]
    lines[1]["body"]["messages"][0]["content"] = "emulate-error:500"  # type: ignore[index]
    batch_id = await engine.create_batch(lines, max_attempts=3)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    got = await _results(engine, batch_id)
    bad, server = got["r-00000"], got["r-00001"]
    assert (bad.attempts, bad.error.retryable) == (1, False)
    # A request that fails with a server error every time gets every attempt, no more.
    assert (server.attempts, server.error.retryable) == (3, True)
    assert batch.request_counts.succeeded == 4
    sent = emulator_state(emulator)["batches"]
    assert [b["request_count"] for b in sent] == [6, 1, 1]


async def test_one_attempt_turns_retries_off(engine: Engine, emulator: RunningEmulator) -> None:
    flaky(emulator)
    batch_id = await engine.create_batch(chat_lines(40), max_attempts=1)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.request_counts.errored > 0
    assert len(emulator_state(emulator)["batches"]) == 1


async def test_a_cancelled_batch_is_not_retried(engine: Engine, emulator: RunningEmulator) -> None:
    flaky(emulator, 1.0)  # every first attempt fails
    batch_id = await engine.create_batch(chat_lines(10), max_attempts=3)
    await engine.cancel(batch_id)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.CANCELLED
    assert len(emulator_state(emulator)["batches"]) <= 1


async def test_unified_export_carries_attempts_and_history(
    engine: Engine, emulator: RunningEmulator
) -> None:
    flaky(emulator)
    lines = chat_lines(30)
    batch_id = await engine.create_batch(lines, max_attempts=8)
    await engine.wait(batch_id, interval=0.05, timeout=120)
    exported = [
        orjson.loads(line)
        async for chunk in engine.result_lines(batch_id, "unified")
        for line in chunk
    ]
    views = [r.as_unified() async for r in engine.results(batch_id)]
    assert [orjson.loads(orjson.dumps(v)) for v in views] == exported
    assert any(line["attempts"] > 1 and line["history"] for line in exported)
    follow_ups = sa.select(sa.func.count()).select_from(jobs).where(jobs.c.batch_id == batch_id)
    async with engine.store.engine.connect() as conn:
        assert (await conn.execute(follow_ups)).scalar() > 1


async def test_a_job_cancelled_for_its_max_age_is_sent_again(
    engine: Engine, emulator: RunningEmulator
) -> None:
    # The provider never finishes: each attempt is cancelled at its maximum age.
    emulator.openai.config.update({"in_progress_seconds": 20_000.0})
    batch_id = await engine.create_batch(chat_lines(5), max_age=0.3, max_attempts=3)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.EXPIRED
    got = await _results(engine, batch_id)
    assert {r.attempts for r in got.values()} == {3}
    for result in got.values():
        assert result.error is not None and result.error.retryable
        assert [a.error.code for a in result.history if a.error] == ["batch_cancelled"] * 2
    sent = emulator_state(emulator)["batches"]
    assert [b["request_count"] for b in sent] == [5, 5, 5]
