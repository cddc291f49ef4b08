"""Spend caps (`max_cost`): a batch over its cap is refused before anything is sent; a
running batch whose cost passes its cap is cancelled with its finished results kept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest

from tests.support.emulated import chat_lines, emulator_state, open_engine
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.engine.caps import MAX_COST_REACHED
from unibatch.errors import CostLimitError
from unibatch.estimate import estimate
from unibatch.types import BatchStatus, RequestStatus

# Input at $1,000,000 per million tokens ($1 a token, 50 cents in a batch), output free:
# costs are token counts, and the emulator's own count of a prompt decides the actual.
PRICES = """
["openai/gpt-4o-mini"]
input = 1000000.0
output = 0.0

["openai/gpt-4o"]
input = 1000000.0
output = 0.0
"""


@pytest.fixture
async def priced(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings, tmp_path: Path
) -> AsyncIterator[Engine]:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    settings = fast_settings.model_copy(update={"prices": path})
    engine = await open_engine(database_url, emulator, settings)
    yield engine
    await engine.aclose()


async def test_a_batch_over_its_cap_is_refused_before_sending(
    priced: Engine, emulator: RunningEmulator
) -> None:
    lines = chat_lines(10)
    expected = estimate(lines, pricer=priced.pricer).models[0].batch_cost
    assert expected is not None
    with pytest.raises(CostLimitError, match="over its max_cost") as caught:
        await priced.create_batch(lines, max_cost=expected * 0.99)
    assert f"${expected:.6f}" in str(caught.value)
    # Nothing stored, nothing run, nothing uploaded.
    assert await priced.list_batches() == []
    assert await priced.run_once() == 0
    state = emulator_state(emulator)
    assert state["batches"] == [] and state["files"] == 0


async def test_a_batch_within_its_cap_runs(priced: Engine) -> None:
    lines = chat_lines(10)
    expected = estimate(lines, pricer=priced.pricer).models[0].batch_cost
    assert expected is not None
    batch_id = await priced.create_batch(lines, max_cost=expected)
    row = await priced.store.spend(batch_id)
    assert row is not None and row["estimated_cost"] == pytest.approx(expected)
    batch = await priced.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    # Each result shows the price it was costed at: the prices file's, at half price.
    results = [r async for r in priced.results(batch_id)]
    price = {
        "input": 1000000.0,
        "output": 0.0,
        "source": str(priced.settings.prices),
        "batch_discount": 0.5,
    }
    assert all(r.cost is not None and r.cost.price == price for r in results)
    exported = [
        orjson.loads(line)
        async for lines in priced.result_lines(batch_id, "unified")
        for line in lines
    ]
    assert [line["cost"]["price"] for line in exported] == [price] * len(results)
    assert exported == [orjson.loads(orjson.dumps(r.as_unified())) for r in results]


async def test_a_cap_needs_a_known_price(engine: Engine, emulator: RunningEmulator) -> None:
    with pytest.raises(CostLimitError, match="no known price for openai/ft-unpriced"):
        await engine.create_batch(chat_lines(2, model="openai/ft-unpriced"), max_cost=100.0)
    assert emulator_state(emulator)["batches"] == []


async def test_a_running_batch_is_stopped_by_its_cap_and_keeps_its_results(
    priced: Engine, emulator: RunningEmulator
) -> None:
    # Two provider jobs (one per model); the first the emulator creates stays in progress
    # until cancelled, so exactly one finishes while the other is out.
    lines = [
        {
            "custom_id": f"{prefix}-{i}",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": "international " * 10}],
                "max_tokens": 5,
            },
        }
        for prefix, model in (("a", "openai/gpt-4o-mini"), ("b", "openai/gpt-4o"))
        for i in range(10)
    ]
    emulator.openai.config.update({"hold_batches": 1})
    estimated = estimate(lines, pricer=priced.pricer).models
    total = sum(m.batch_cost or 0.0 for m in estimated)
    # The emulator bills a quarter of a prompt's characters: 42 tokens for this one, which
    # counts 18. The finished half then costs 1.17 times the whole estimate: below a cap
    # of 1.4 times, which it passes only with the estimate of the half still out.
    cap = total * 1.4
    batch_id = await priced.create_batch(lines, max_cost=cap)
    batch = await priced.wait(batch_id, interval=0.05, timeout=120)

    assert batch.status is BatchStatus.CANCELLED
    assert [e.code for e in batch.validation_errors] == [MAX_COST_REACHED]
    assert "finished results are kept" in batch.errors[0]
    results = [r async for r in priced.results(batch_id)]
    by_status: dict[RequestStatus, set[str]] = {}
    for r in results:
        by_status.setdefault(r.status, set()).add(r.custom_id[0])
    # One model's job finished and its ten results are kept; the held one was cancelled.
    assert batch.request_counts.succeeded == 10
    assert batch.request_counts.cancelled == 10
    assert len(by_status[RequestStatus.SUCCEEDED]) == 1
    assert by_status[RequestStatus.SUCCEEDED].isdisjoint(by_status[RequestStatus.CANCELLED])
    assert batch.cost.total > 0
    # The cap was passed, but not by the finished results alone: the estimate counted.
    assert total < batch.cost.total < cap
    statuses = sorted(b["status"] for b in emulator_state(emulator)["batches"])
    assert statuses == ["cancelled", "completed"]
