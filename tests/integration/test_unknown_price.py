"""A model with no known price: null costs (not 0) through a real batch, and a warning."""

from __future__ import annotations

import logging

import pytest

from tests.support.emulated import chat_lines
from unibatch.engine import Engine
from unibatch.types import BatchStatus


async def test_unknown_price_is_null_not_zero(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="unibatch"):
        batch_id = await engine.create_batch(chat_lines(3, model="openai/ft-unpriced-model"))
    assert "no known price for openai/ft-unpriced-model" in caplog.text
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    results = [r async for r in engine.results(batch_id)]
    assert len(results) == 3
    assert all(r.usage.input_tokens > 0 and r.cost is None for r in results)
    assert all(r.as_unified()["cost"] is None for r in results)


async def test_known_price_is_not_warned(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="unibatch"):
        await engine.create_batch(chat_lines(1))
    assert "no known price" not in caplog.text
