"""Fixtures shared by the engine tests: one emulator of every provider and an engine on
the test database wired to it over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.emulated import open_engine
from unibatch.config import Settings
from unibatch.emulators import EmulatorConfig, RunningEmulator, running_emulator
from unibatch.engine import Engine


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with running_emulator(EmulatorConfig(time_scale=0.05)) as emu:
        yield emu


@pytest.fixture
async def engine(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> AsyncIterator[Engine]:
    eng = await open_engine(database_url, emulator, fast_settings)
    yield eng
    await eng.aclose()
