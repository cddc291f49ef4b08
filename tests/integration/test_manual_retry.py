"""Manual retry: the failed or unfinished requests of an ended batch run again into the
same batch, on its models or another one, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.emulated import chat_lines, emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.types import BatchStatus, RequestStatus, Result


async def _results(engine: Engine, batch_id: str) -> dict[str, Result]:
    return {r.custom_id: r async for r in engine.results(batch_id)}


async def _ended_with_failures(engine: Engine, emulator: RunningEmulator) -> str:
    """A batch of 20 that ended with some requests errored: a few fail for good (a 400
    every time), others failed their one attempt with a server error."""
    emulator.openai.config.update({"retryable_failure_rate": 0.3})
    lines = chat_lines(20)
    lines[0]["body"]["messages"][0]["content"] = "emulate-error:400"
    batch_id = await engine.create_batch(lines, max_attempts=1)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.request_counts.errored > 1
    emulator.openai.config.update({"retryable_failure_rate": 0.0})
    return batch_id


async def test_retry_reruns_failures_into_the_same_batch(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await _ended_with_failures(engine, emulator)
    before = await _results(engine, batch_id)
    failed = {cid for cid, r in before.items() if r.status is not RequestStatus.SUCCEEDED}

    outcome = await engine.retry(batch_id, statuses=["errored"])
    assert outcome.retried == len(failed)
    assert outcome.refused == []
    assert (await engine.get_batch(batch_id)).status is not BatchStatus.COMPLETED
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert batch.status is BatchStatus.COMPLETED
    after = await _results(engine, batch_id)
    assert set(after) == set(before)
    for cid, result in after.items():
        if cid not in failed:
            assert result == before[cid]  # untouched
            continue
        assert result.attempts == 2
        assert [a.attempt for a in result.history] == [1]
        assert result.history[0].error == before[cid].error
    # The permanent failure ran again (a manual retry is the user's call) and failed again.
    assert after["r-00000"].status is RequestStatus.ERRORED
    assert batch.request_counts.succeeded == 19
    sent = emulator_state(emulator)["batches"]
    assert [b["request_count"] for b in sent] == [20, len(failed)]


async def test_retry_on_another_model_applies_its_rules(
    engine: Engine, emulator: RunningEmulator
) -> None:
    lines = chat_lines(6)
    for line in lines[:3]:
        line["body"]["messages"][0]["content"] = "emulate-error:500"
    # Claude takes no temperature above 1: this one cannot move.
    lines[2]["body"]["temperature"] = 1.5
    batch_id = await engine.create_batch(lines, max_attempts=1)
    await engine.wait(batch_id, interval=0.05, timeout=60)
    # The marker fails them on Claude too; with one attempt each they fail there once.
    outcome = await engine.retry(batch_id, model="anthropic/claude-haiku-4-5", max_attempts=1)
    assert [r.custom_id for r in outcome.refused] == ["r-00002"]
    assert "temperature" in outcome.refused[0].message
    assert outcome.retried == 2
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status.terminal
    got = await _results(engine, batch_id)
    for cid in ("r-00000", "r-00001"):
        result = got[cid]
        assert (result.provider, result.model) == ("anthropic", "claude-haiku-4-5")
        assert result.attempts == 2
        assert result.error is not None and result.error.code == "api_error"
        assert (result.history[0].provider, result.history[0].model) == (
            "openai",
            "gpt-4o-mini",
        )
    kept = got["r-00002"]
    assert (kept.provider, kept.attempts, kept.status) == ("openai", 1, RequestStatus.ERRORED)
    assert len(emulator_state(emulator, "anthropic")["batches"]) == 1


async def test_only_an_ended_batch_can_be_retried(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await engine.create_batch(chat_lines(3))
    with pytest.raises(InputError, match="only an ended batch"):
        await engine.retry(batch_id)
    with pytest.raises(InputError, match="cannot be retried"):
        await engine.retry(batch_id, statuses=["succeeded"])


async def test_retry_on_a_model_without_a_batch_api_runs_in_real_time(
    engine: Engine, emulator: RunningEmulator
) -> None:
    """Failed OpenAI batch requests moved to `local/...` are answered by its synchronous
    endpoint (a real-time job), since that provider has no Batch API."""
    batch_id = await _ended_with_failures(engine, emulator)
    before = await _results(engine, batch_id)
    # Those that failed for a server error (the 400 would fail anywhere).
    failed = {
        cid
        for cid, r in before.items()
        if r.status is not RequestStatus.SUCCEEDED and cid != "r-00000"
    }
    outcome = await engine.retry(batch_id, model="local/llama3.1:8b")
    assert outcome.retried == len(failed) + 1
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status.terminal
    got = await _results(engine, batch_id)
    for cid in failed:
        assert (got[cid].provider, got[cid].mode, got[cid].attempts) == ("local", "realtime", 2)
        assert got[cid].status is RequestStatus.SUCCEEDED and got[cid].cost is None
    # The 400 fails on the local server too.
    assert (got["r-00000"].mode, got["r-00000"].status) == ("realtime", RequestStatus.ERRORED)
    assert all(got[cid].mode == "batch" for cid in set(got) - failed - {"r-00000"})
    modes = {job.provider: job.mode for job in await engine.store.jobs_of(batch_id)}
    assert modes == {"openai": "batch", "local": "realtime"}
