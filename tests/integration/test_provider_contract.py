"""What every registered provider with a Batch API must do, run through the engine against
its emulator over real HTTP, on SQLite and PostgreSQL: success, partial failure, expiry,
cancel mid-flight and a 429 storm. Where providers differ, `contract_cases` holds the
difference. (Providers without one run in real time: tests/integration/test_realtime_*.)"""

from __future__ import annotations

import pytest

from tests.integration.contract_cases import CASES, Case
from tests.support.clock import ShiftedClock
from tests.support.emulated import drive_until_running, emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.providers.registry import known_providers, spec_of
from unibatch.types import BatchStatus, RequestStatus

# Unscaled seconds a batch stays in progress: longer than any test, so only moving the
# emulators' clock brings it to a deadline or half-way, never the machine being slow.
HOLD = 20_000.0
BATCH_PROVIDERS = [name for name in known_providers() if spec_of(name).batch_limits is not None]


@pytest.fixture(params=BATCH_PROVIDERS)
def case(request: pytest.FixtureRequest) -> Case:
    name: str = request.param
    if name not in CASES:
        pytest.fail(f"provider {name!r} has no case in tests/integration/contract_cases.py")
    return CASES[name]


def test_every_case_is_a_registered_provider() -> None:
    # A case whose provider the registry does not list would silently drop out of this suite.
    assert set(CASES) <= set(known_providers())


async def test_batch_completes_with_results_in_input_order(
    case: Case, engine: Engine, emulator: RunningEmulator
) -> None:
    lines = case.success_lines()
    batch_id = await engine.create_batch(lines, metadata={"team": "evals"})
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.total == len(lines)
    assert batch.request_counts.succeeded == len(lines)
    assert batch.usage.input_tokens > 0 and batch.usage.output_tokens > 0
    assert batch.cost.total > 0
    assert batch.metadata == {"team": "evals"}
    assert batch.providers == (case.name,)
    got = [r async for r in engine.results(batch_id)]
    assert [r.custom_id for r in got] == [line["custom_id"] for line in lines]
    first = got[0]
    assert first.status is RequestStatus.SUCCEEDED
    assert first.provider == case.name and first.model == case.model.partition("/")[2]
    assert first.response is not None and first.response["object"] == "chat.completion"
    choice = first.response["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"].startswith("Echo: ")
    line = first.as_openai(batch_id)
    assert line["response"]["status_code"] == 200
    assert line["response"]["body"]["choices"][0]["message"]["role"] == "assistant"
    assert line["error"] is None
    assert sum(r.cost.total for r in got) == pytest.approx(batch.cost.total)
    await case.check_success(emulator, engine, batch_id, first)


async def test_partial_failure_keeps_every_row(
    case: Case, engine: Engine, emulator: RunningEmulator
) -> None:
    emulator.emulators[case.name].config.failure_rate = 0.3
    lines = case.partial_failure_lines()
    # One attempt: the rows a partly failed provider batch leaves, before any retry.
    batch_id = await engine.create_batch(lines, max_attempts=1)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.COMPLETED
    assert counts.errored > 0 and counts.succeeded > 0
    assert counts.succeeded + counts.errored == len(lines)
    rows = {r.custom_id: r async for r in engine.results(batch_id)}
    assert len(rows) == len(lines)
    errored = [r for r in rows.values() if r.status is RequestStatus.ERRORED]
    assert len(errored) == counts.errored
    assert all(r.error is not None and r.error.message for r in errored)
    case.check_partial_failure(batch_id, rows, errored)


async def test_expired_batch_reports_unfinished_requests_expired(
    case: Case, engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    provider = emulator.emulators[case.name]
    provider.config.in_progress_seconds = HOLD
    case.expire_at(provider, HOLD / 2)
    # One attempt: what an expired provider batch leaves, before any retry sends it again.
    batch_id = await engine.create_batch(case.lines(40), max_attempts=1)
    await drive_until_running(engine, batch_id)
    emulator_clock.advance(provider.config.scaled(HOLD / 2) + 1.0)  # past the deadline
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.EXPIRED
    assert counts.errored == 0
    expired = [r async for r in engine.results(batch_id) if r.status is RequestStatus.EXPIRED]
    assert len(expired) == counts.expired
    assert all(r.error is not None and r.error.code == "batch_expired" for r in expired)
    if case.keeps_results_on_expiry:
        assert 0 < counts.expired < 40
        assert counts.succeeded + counts.expired == 40
    else:
        assert counts.expired == 40
        assert {r.status async for r in engine.results(batch_id)} == {RequestStatus.EXPIRED}


async def test_cancel_mid_flight_keeps_finished_results(
    case: Case, engine: Engine, emulator: RunningEmulator, emulator_clock: ShiftedClock
) -> None:
    provider = emulator.emulators[case.name]
    provider.config.in_progress_seconds = HOLD
    batch_id = await engine.create_batch(case.lines(30))
    await drive_until_running(engine, batch_id)
    emulator_clock.advance(provider.config.scaled(HOLD / 2))  # half of the requests done
    batch = await engine.cancel(batch_id)
    assert batch.status is BatchStatus.CANCELLING
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    counts = batch.request_counts
    assert batch.status is BatchStatus.CANCELLED
    assert 0 < counts.cancelled < 30 and counts.succeeded > 0
    assert counts.succeeded + counts.cancelled == 30
    assert len([r async for r in engine.results(batch_id)]) == 30
    (seen,) = emulator_state(emulator, case.name)["batches"]
    assert seen["status"] == case.cancelled_status
    case.check_cancelled(seen)


async def test_429_storm_with_retry_after_never_fails(
    case: Case, engine: Engine, emulator: RunningEmulator
) -> None:
    provider = emulator.emulators[case.name]
    batch_id = await engine.create_batch(case.lines(20))
    provider.inject_faults(6, status=429, retry_after=case.storm_retry_after)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    assert batch.request_counts.succeeded == 20
    assert provider.faults.pending == 0
    assert len(emulator_state(emulator, case.name)["batches"]) == 1
    case.check_storm(provider)
