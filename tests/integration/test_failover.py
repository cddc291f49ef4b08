"""Failover: a provider job that fails, or is stuck past `stuck_after`, moves its unfinished
requests to the batch's fallback model, on SQLite and PostgreSQL, against the emulators
over real HTTP."""

from __future__ import annotations

import pytest

from tests.support.clock import ShiftedClock
from tests.support.crashes import KilledOnce
from tests.support.emulated import chat_lines, drive_until_running, emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError
from unibatch.store import retries
from unibatch.types import BatchStatus, RequestStatus, Result

HAIKU = "anthropic/claude-haiku-4-5"


async def _results(engine: Engine, batch_id: str) -> dict[str, Result]:
    return {r.custom_id: r async for r in engine.results(batch_id)}


def _priced_at(engine: Engine, result: Result, provider: str, model: str) -> float:
    """What the result's usage costs at `provider/model`'s batch price."""
    spec = engine.ctx.providers.spec(provider)
    rates = engine.ctx.pricer.rates(provider, model, spec.batch_discount)
    usage = result.usage
    return usage.input_tokens * rates.input + usage.output_tokens * rates.output


async def test_a_failed_job_fails_over_to_another_provider(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.update({"fail_batches": 1})
    batch_id = await engine.create_batch(chat_lines(30), fallback_models=[HAIKU])
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 30
    got = await _results(engine, batch_id)
    for result in got.values():
        assert result.status is RequestStatus.SUCCEEDED
        assert (result.provider, result.model) == ("anthropic", "claude-haiku-4-5")
        assert result.attempts == 2
        (before,) = result.history
        assert (before.provider, before.model) == ("openai", "gpt-4o-mini")
        assert before.error is not None and before.error.code == "batch_failed"
        # Each answer is priced at the model that gave it; the failed batch billed nothing.
        assert result.cost.total == pytest.approx(
            _priced_at(engine, result, "anthropic", "claude-haiku-4-5")
        )
        assert result.cost.total > 0
    assert batch.cost.total == pytest.approx(sum(r.cost.total for r in got.values()))
    assert [b["status"] for b in emulator_state(emulator)["batches"]] == ["failed"]
    assert len(emulator_state(emulator, "anthropic")["batches"]) == 1


async def test_fallbacks_are_tried_in_order(engine: Engine, emulator: RunningEmulator) -> None:
    emulator.openai.config.update({"fail_batches": 2})
    fallbacks = ["openai/gpt-4o", HAIKU]
    batch_id = await engine.create_batch(chat_lines(5), fallback_models=fallbacks)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.request_counts.succeeded == 5
    for result in (await _results(engine, batch_id)).values():
        assert result.provider == "anthropic"
        assert [(a.provider, a.model) for a in result.history] == [
            ("openai", "gpt-4o-mini"),
            ("openai", "gpt-4o"),
        ]


async def test_a_stuck_job_is_cancelled_and_fails_over(
    engine: Engine, emulator: RunningEmulator
) -> None:
    # The OpenAI batch never leaves in_progress; the engine gives up after 0.3 s.
    emulator.openai.config.update({"hold_batches": 1})
    batch_id = await engine.create_batch(chat_lines(10), fallback_models=[HAIKU], stuck_after=0.3)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 10
    for result in (await _results(engine, batch_id)).values():
        assert result.provider == "anthropic"
        (before,) = result.history
        assert before.provider == "openai" and before.error is not None
        assert before.error.code == "batch_cancelled"
    (sent,) = emulator_state(emulator)["batches"]
    assert sent["status"] == "cancelled"
    # The job says why it was given up.
    (stuck,) = [j for j in await engine.store.jobs_of(batch_id) if j.provider == "openai"]
    assert stuck.status is BatchStatus.FAILED
    assert any("stuck in validating/in_progress past 0.3s" in e for e in stuck.errors)


@pytest.mark.parametrize("emulator", [{"in_progress_seconds": 3600.0}], indirect=True)
async def test_a_stuck_job_keeps_what_it_had_finished(
    engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    # One clock for both sides: the OpenAI batch is 110 s into its 180 s of processing
    # (about 60 % done) when the engine, with a threshold of 100 s, finds it stuck.
    engine.ctx.clock = emulator_clock
    batch_id = await engine.create_batch(chat_lines(20), fallback_models=[HAIKU], stuck_after=100)
    await drive_until_running(engine, batch_id)
    emulator.openai.config.update({"in_progress_seconds": 1.5})  # for the fallback's batch
    emulator_clock.advance(110.0)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert batch.request_counts.succeeded == 20
    got = await _results(engine, batch_id)
    kept = sorted(cid for cid, r in got.items() if r.provider == "openai")
    moved = sorted(cid for cid, r in got.items() if r.provider == "anthropic")
    assert 10 <= len(kept) <= 14
    assert all(got[cid].attempts == 1 and not got[cid].history for cid in kept)
    assert all(got[cid].attempts == 2 for cid in moved)
    (claude,) = emulator_state(emulator, "anthropic")["batches"]
    assert claude["request_count"] == len(moved) == 20 - len(kept)


async def test_a_request_the_fallback_refuses_keeps_its_error(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.update({"fail_batches": 1})
    lines = chat_lines(4)
    lines[0]["body"]["n"] = 2  # OpenAI takes several choices; Anthropic's mapping does not
    batch_id = await engine.create_batch(lines, fallback_models=[HAIKU])
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert batch.request_counts.succeeded == 3
    assert batch.request_counts.errored == 1
    got = await _results(engine, batch_id)
    refused = got["r-00000"]
    assert (refused.provider, refused.attempts, refused.history) == ("openai", 1, ())
    assert refused.error is not None and refused.error.code == "batch_failed"
    assert f"fallback {HAIKU} refused it" in refused.error.message
    assert "n > 1" in refused.error.message
    assert all(got[f"r-0000{i}"].provider == "anthropic" for i in (1, 2, 3))
    assert emulator_state(emulator, "anthropic")["batches"][0]["request_count"] == 3


async def test_without_a_fallback_a_failed_job_stays_failed(
    engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.openai.config.update({"fail_batches": 1})
    batch_id = await engine.create_batch(chat_lines(5), max_attempts=3)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.FAILED
    assert batch.request_counts.errored == 5
    for result in (await _results(engine, batch_id)).values():
        assert (result.provider, result.attempts) == ("openai", 1)
        assert result.error is not None and result.error.code == "batch_failed"
    assert len(emulator_state(emulator)["batches"]) == 1
    assert emulator_state(emulator, "anthropic")["batches"] == []


async def test_a_crash_while_planning_the_failover_loses_nothing(
    engine: Engine, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The process dies after the follow-up job is written, before the transaction commits:
    # nothing of the move stays, and the next round plans it again, once.
    dies = KilledOnce(retries.create_follow_up, runs_first=True)
    monkeypatch.setattr(retries, "create_follow_up", dies)
    emulator.openai.config.update({"fail_batches": 1})
    batch_id = await engine.create_batch(chat_lines(12), fallback_models=[HAIKU])
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert dies.calls == [12]
    assert batch.request_counts.succeeded == 12
    got = await _results(engine, batch_id)
    assert {r.attempts for r in got.values()} == {2}
    assert [b["request_count"] for b in emulator_state(emulator, "anthropic")["batches"]] == [12]
    jobs = await engine.store.jobs_of(batch_id)
    assert sorted(j.provider for j in jobs) == ["anthropic", "openai"]


async def test_bad_fallback_options_are_refused(engine: Engine) -> None:
    with pytest.raises(InputError, match="fallback"):
        await engine.create_batch(chat_lines(1), fallback_models=["nowhere"])
    with pytest.raises(InputError, match="stuck_after needs a fallback"):
        await engine.create_batch(chat_lines(1), stuck_after=60.0)
    with pytest.raises(InputError, match="stuck_after must be positive"):
        await engine.create_batch(chat_lines(1), fallback_models=[HAIKU], stuck_after=0)
