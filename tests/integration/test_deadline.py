"""Deadlines: a batch whose provider job does not end in time is cancelled before its
deadline, keeps what finished, and runs the rest through the real-time runner on the same
model, on SQLite and PostgreSQL, against the emulators over real HTTP. The engine and the
emulators share a clock the tests move forward: nothing here waits for time to pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pytest

from tests.support.clock import ShiftedClock
from tests.support.crashes import KilledOnce
from tests.support.emulated import chat_lines, drive_until_running, emulator_state
from tests.support.waiting import until
from unibatch.config import RealtimeLimit
from unibatch.emulators import EmulatorConfig, RunningEmulator
from unibatch.engine import Engine
from unibatch.engine.deadline import parse_deadline, switch_time, throughput
from unibatch.errors import InputError
from unibatch.store import retries
from unibatch.store.records import JobRecord
from unibatch.types import Batch, BatchStatus, RequestStatus, Result

HOUR = 3600.0
DEADLINE = 2 * HOUR
# With no real-time job measured yet, 8 requests at a time of 30 s each: 10 requests are
# estimated at 37.5 s, 47 s with the slack, and the 600 s margin puts the switch-over at
# about 647 s before the deadline.
BEFORE_SWITCH = DEADLINE - 700
PAST_SWITCH = DEADLINE - 640


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Emulated time runs at the engine's pace (a deadline is in the engine's seconds);
    short phases keep a batch that is not held quick."""
    return EmulatorConfig(
        time_scale=1.0,
        validating_seconds=0.1,
        in_progress_seconds=0.3,
        finalizing_seconds=0.1,
        cancelling_seconds=0.1,
    )


async def _results(engine: Engine, batch_id: str) -> dict[str, Result]:
    return {r.custom_id: r async for r in engine.results(batch_id)}


async def _start(engine: Engine, clock: ShiftedClock, n: int) -> tuple[str, float]:
    engine.ctx.clock = clock
    deadline = clock() + DEADLINE
    batch_id = await engine.create_batch(chat_lines(n), deadline=deadline)
    await drive_until_running(engine, batch_id)
    return batch_id, deadline


def _lease_lapses(engine: Engine, clock: ShiftedClock) -> None:
    """The dead worker's leases run out (another worker takes its steps over)."""
    clock.advance(engine.ctx.settings.lease_seconds + 1)


def _answered_once(emulator: RunningEmulator, sent: dict[str, int], moved: list[str]) -> None:
    """Each moved request was sent once in real time, and nothing else was."""
    assert sent == dict.fromkeys(moved, 1)
    seen = emulator_state(emulator)["realtime"]
    assert seen["distinct_answered"] == len(moved)
    assert seen["answered_twice"] == 0


def _ended_in_time(batch: Batch, deadline: float) -> None:
    assert batch.status is BatchStatus.COMPLETED
    assert batch.finished_at is not None and batch.finished_at < deadline
    assert batch.deadline == pytest.approx(deadline)
    assert batch.deadline_switched_at is not None


async def test_a_held_batch_finishes_in_real_time_before_its_deadline(
    engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    emulator.openai.config.update({"hold_batches": 1})  # never leaves in_progress
    batch_id, deadline = await _start(engine, emulator_clock, 10)

    # Before the switch-over the provider batch is left alone.
    emulator_clock.advance(BEFORE_SWITCH)
    await engine.run_once(batch_id=batch_id)
    assert (await engine.get_batch(batch_id)).deadline_switched_at is None
    (sent,) = emulator_state(emulator)["batches"]
    assert sent["status"] == "in_progress"

    emulator_clock.advance(PAST_SWITCH - BEFORE_SWITCH)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    _ended_in_time(batch, deadline)
    assert batch.request_counts.succeeded == 10
    got = await _results(engine, batch_id)
    for result in got.values():
        assert result.status is RequestStatus.SUCCEEDED
        assert (result.provider, result.model, result.mode) == (
            "openai",
            "gpt-4o-mini",
            "realtime",
        )
        (before,) = result.history
        assert before.error is not None and before.error.code == "batch_cancelled"
    (sent,) = emulator_state(emulator)["batches"]
    assert sent["status"] == "cancelled"
    _answered_once(emulator, await engine.store.send_counts(batch_id), sorted(got))
    cancelled = [j for j in await engine.store.jobs_of(batch_id) if j.mode == "batch"]
    assert [j.status for j in cancelled] == [BatchStatus.CANCELLED]
    assert any("deadline" in e for e in cancelled[0].errors)


@pytest.mark.parametrize("emulator", [{"in_progress_seconds": 4 * HOUR}], indirect=True)
async def test_results_finished_before_the_switch_are_kept(
    engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    # The provider batch takes 4 h; 110 minutes in (under half done) the deadline,
    # 2 h after submit, makes the engine switch over.
    batch_id, deadline = await _start(engine, emulator_clock, 20)
    emulator_clock.advance(PAST_SWITCH)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    _ended_in_time(batch, deadline)
    assert batch.request_counts.succeeded == 20
    got = await _results(engine, batch_id)
    kept = sorted(cid for cid, r in got.items() if r.mode == "batch")
    moved = sorted(cid for cid, r in got.items() if r.mode == "realtime")
    assert 6 <= len(kept) <= 12
    assert len(kept) + len(moved) == 20
    assert all(got[cid].attempts == 1 and not got[cid].history for cid in kept)
    assert all(got[cid].attempts == 2 for cid in moved)
    # Realtime answers are at list price, the kept ones at the batch price.
    assert all(got[cid].cost.total > got[kept[0]].cost.total * 1.5 for cid in moved)
    _answered_once(emulator, await engine.store.send_counts(batch_id), moved)


async def test_a_deadline_too_close_for_the_batch_api_runs_in_real_time_at_once(
    engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    engine.ctx.clock = emulator_clock
    deadline = emulator_clock() + 300  # less than the margin: no time for a provider batch
    batch_id = await engine.create_batch(chat_lines(5), deadline=deadline)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    _ended_in_time(batch, deadline)
    got = await _results(engine, batch_id)
    assert {(r.mode, r.attempts) for r in got.values()} == {("realtime", 1)}
    assert emulator_state(emulator)["batches"] == []
    # That run is now what the next estimate for the model goes by.
    measured = await throughput(engine.ctx, "openai", "gpt-4o-mini")
    assert measured > 8 / engine.ctx.settings.realtime_request_seconds


@pytest.mark.parametrize("dies_in", ["job_cancel_sent", "create_follow_up"])
async def test_a_worker_killed_around_the_switch_sends_nothing_twice(
    engine: Engine,
    emulator: RunningEmulator,
    emulator_clock: ShiftedClock,
    monkeypatch: pytest.MonkeyPatch,
    dies_in: str,
) -> None:
    # job_cancel_sent: the provider took the cancel, and the worker died before writing
    # that it sent it (the next poll cancels again). create_follow_up: it died after
    # writing the real-time job, before the transaction committed (nothing of the move
    # stays, and the next round plans it again, once).
    lapse = partial(_lease_lapses, engine, emulator_clock)
    if dies_in == "create_follow_up":
        dies = KilledOnce(retries.create_follow_up, runs_first=True, on_kill=lapse)
        monkeypatch.setattr(retries, "create_follow_up", dies)
    else:
        dies = KilledOnce(engine.store.job_cancel_sent, runs_first=False, on_kill=lapse)
        monkeypatch.setattr(engine.store, "job_cancel_sent", dies)
    emulator.openai.config.update({"hold_batches": 1})
    batch_id, deadline = await _start(engine, emulator_clock, 8)
    emulator_clock.advance(PAST_SWITCH)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    assert dies.calls == [8 if dies_in == "create_follow_up" else None]
    _ended_in_time(batch, deadline)
    got = await _results(engine, batch_id)
    assert {r.attempts for r in got.values()} == {2}
    _answered_once(emulator, await engine.store.send_counts(batch_id), sorted(got))
    jobs = await engine.store.jobs_of(batch_id)
    assert sorted(j.mode for j in jobs) == ["batch", "realtime"]
    assert [b["status"] for b in emulator_state(emulator)["batches"]] == ["cancelled"]


@pytest.mark.parametrize("emulator", [{"in_progress_seconds": 4 * HOUR}], indirect=True)
async def test_retries_after_the_switch_run_in_real_time(
    engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    # The first request fails with a server error wherever it goes: its batch result is
    # among those kept, and each retry after the switch-over is sent in real time, not
    # back through the Batch API.
    # A retry's backoff of an hour is cut to what the deadline leaves.
    engine.ctx.clock = emulator_clock
    settings = {"realtime_max_tries": 1, "retry_backoff": HOUR, "retry_backoff_max": HOUR}
    engine.ctx.settings = engine.ctx.settings.model_copy(update=settings)
    lines = chat_lines(10)
    lines[0]["body"]["messages"][0]["content"] = "emulate-error:500"
    deadline = emulator_clock() + DEADLINE
    batch_id = await engine.create_batch(lines, deadline=deadline, max_attempts=3)
    await drive_until_running(engine, batch_id)
    emulator_clock.advance(PAST_SWITCH)
    # The retry waits no later than the start of the margin kept before the deadline
    # (and the next one, planned then, not at all).
    retry = await _drive_until_retry_planned(engine, batch_id)
    assert retry.next_run_at is not None
    assert retry.next_run_at <= deadline - engine.ctx.settings.deadline_margin
    emulator_clock.advance(retry.next_run_at - emulator_clock())
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)

    _ended_in_time(batch, deadline)
    failing = (await _results(engine, batch_id))["r-00000"]
    assert failing.status is RequestStatus.ERRORED
    assert (failing.mode, failing.attempts) == ("realtime", 3)
    modes = [j.mode for j in await engine.store.jobs_of(batch_id)]
    assert modes.count("batch") == 1
    assert len(emulator_state(emulator)["batches"]) == 1


async def _drive_until_retry_planned(engine: Engine, batch_id: str) -> JobRecord:
    """Drive the batch until a retry job waits for its backoff; that job."""
    found: list[JobRecord] = []

    async def planned() -> bool:
        for job in await engine.store.jobs_of(batch_id):
            waiting = job.next_run_at is not None and job.next_run_at > engine.ctx.clock()
            if job.phase == "pending" and job.mode == "realtime" and waiting:
                found.append(job)
                return True
        await engine.run_once(batch_id=batch_id)
        return False

    await until(planned, "a retry to be planned", 30, step=0.05)
    return found[0]


async def test_without_a_deadline_nothing_switches(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await engine.create_batch(chat_lines(3))
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert (batch.deadline, batch.deadline_switched_at) == (None, None)
    assert {r.mode for r in (await _results(engine, batch_id)).values()} == {"batch"}


async def test_the_switch_over_follows_the_measured_throughput(
    engine: Engine, emulator: RunningEmulator
) -> None:
    batch_id = await engine.create_batch(chat_lines(40), deadline="3h")
    batch = await engine.get_batch(batch_id)
    assert batch.deadline is not None
    # 40 requests at 8 / 30 s: 150 s, 187.5 s with the slack, plus the 600 s margin.
    at = await switch_time(engine.ctx, batch_id, batch.deadline)
    assert at == pytest.approx(batch.deadline - 787.5)
    limited = {"openai/gpt-4o-mini": RealtimeLimit(rpm=6)}  # one request every 10 s: 400 s
    engine.ctx.settings = engine.ctx.settings.model_copy(update={"realtime_limits": limited})
    at = await switch_time(engine.ctx, batch_id, batch.deadline)
    assert at == pytest.approx(batch.deadline - 1.25 * 400 - 600)


async def test_bad_deadlines_are_refused_before_anything_is_stored(engine: Engine) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    with pytest.raises(InputError, match="already passed"):
        await engine.create_batch(chat_lines(1), deadline=past)
    with pytest.raises(InputError, match="no timezone"):
        await engine.create_batch(chat_lines(1), deadline="2030-01-01T09:00:00")
    with pytest.raises(InputError, match="neither a duration"):
        await engine.create_batch(chat_lines(1), deadline="tomorrow")
    assert await engine.list_batches() == []


def test_deadlines_as_users_write_them() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
    assert parse_deadline("2h", now) == now + 7200
    assert parse_deadline("1h30m", now) == now + 5400
    assert parse_deadline(timedelta(minutes=5), now) == now + 300
    assert parse_deadline("2026-12-01T09:00:00Z", now) == now + 21 * HOUR
    assert parse_deadline("2026-12-01T10:00:00+01:00", now) == now + 21 * HOUR
    assert parse_deadline(datetime(2026, 12, 1, 9, tzinfo=UTC), now) == now + 21 * HOUR
    assert parse_deadline(now + 60, now) == now + 60
    assert parse_deadline(None, now) is None
    with pytest.raises(InputError, match="has no timezone"):
        parse_deadline(datetime(2026, 12, 1, 9), now)
    with pytest.raises(InputError, match="already passed"):
        parse_deadline("2026-11-30T11:59:00Z", now)
