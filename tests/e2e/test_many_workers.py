"""Four workers share one PostgreSQL: every batch submitted, finalized and handled once."""

from __future__ import annotations

import asyncio
import collections
import re
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulated import chat_lines, emulator_state, open_engine
from tests.support.processes import start, wait_for
from unibatch.config import Settings
from unibatch.emulators import EmulatorConfig, RunningEmulator

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
BATCHES = 200


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(time_scale=0.02)


def test_four_workers_200_batches(
    postgres_url: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    handler_log = tmp_path / "handler.log"
    handler_log.touch()
    settings = Settings(poll_schedule=(0.2,))

    async def create() -> list[str]:
        engine = await open_engine(postgres_url, emulator, settings)
        try:
            return [
                await engine.create_batch(
                    chat_lines(3, prefix=f"b{n}"),
                    on_complete="tests.support.handlers:record",
                )
                for n in range(BATCHES)
            ]
        finally:
            await engine.aclose()

    batch_ids = asyncio.run(create())
    env = {
        "UNIBATCH_DATABASE_URL": postgres_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": emulator.base_url("openai"),
        "UNIBATCH_POLL_SCHEDULE": "0.2",
        "UNIBATCH_WORKER_IDLE": "0.05",
        "UNIBATCH_TEST_HANDLER_LOG": str(handler_log),
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(4)]
    workers = [start(["worker", "--verbose"], env, log) for log in logs]
    try:
        wait_for(
            lambda: len(handler_log.read_text().splitlines()) >= BATCHES,
            240,
            "every handler call",
            step=0.2,
        )
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers]
    assert codes == [0, 0, 0, 0]  # graceful stop on SIGTERM

    handled = collections.Counter(line.split()[0] for line in handler_log.read_text().splitlines())
    assert set(handled) == set(batch_ids)
    assert set(handled.values()) == {1}

    finalized: collections.Counter[str] = collections.Counter()
    for log in logs:
        finalized.update(re.findall(r"batch (\S+): finalized", log.read_text()))
    assert set(finalized) == set(batch_ids)
    assert set(finalized.values()) == {1}
    busy = [log for log in logs if "finalized" in log.read_text()]
    assert len(busy) > 1  # the work really was shared

    state: dict[str, Any] = emulator_state(emulator)
    assert len(state["batches"]) == BATCHES  # one provider batch each, none twice
