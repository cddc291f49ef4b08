"""A cancel settles within seconds: the batch is polled again right after the cancel,
not at the pace its polls had slowed to."""

from __future__ import annotations

import asyncio

from tests.support.emulated import chat_lines, open_engine
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.types import BatchStatus


async def test_a_cancel_is_followed_by_quick_polls(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # After the first poll the next would come a minute later.
    settings = fast_settings.model_copy(update={"poll_schedule": (0.05, 60.0)})
    emulator.emulators["openai"].config.in_progress_seconds = 600.0  # still running
    engine = await open_engine(database_url, emulator, settings)
    try:
        batch_id = await engine.create_batch(chat_lines(5))
        deadline = asyncio.get_running_loop().time() + 30
        while (await engine.store.jobs_of(batch_id))[0].poll_count < 1:
            assert asyncio.get_running_loop().time() < deadline, "never polled"
            await engine.run_once(batch_id=batch_id)
            await asyncio.sleep(0.02)
        await engine.cancel(batch_id)
        batch = await engine.wait(batch_id, interval=0.05, timeout=20)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.CANCELLED
