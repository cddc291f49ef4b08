"""Shared fixtures: databases (SQLite file and PostgreSQL), settings, the emulator of every
provider and an engine wired to it over real HTTP.

PostgreSQL tests run when UNIBATCH_TEST_POSTGRES_URL is set; then an unreachable
server fails the run instead of skipping (CI sets it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.clock import ShiftedClock
from tests.support.emulated import open_engine
from unibatch.config import Settings
from unibatch.emulators import EmulatorConfig, RunningEmulator, running_emulator
from unibatch.engine import Engine
from unibatch.store.db import async_url


def _worker_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker wipes and fills a database of its own (`test_gw0`,
    `test_gw1`, ...), made on first use beside the one UNIBATCH_TEST_POSTGRES_URL names."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = sa.make_url(url)
    name = f"{base.database}_{worker}"

    async def create() -> None:
        engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                found = await conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
                )
                if found.first() is None:
                    await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()

    asyncio.run(create())
    return base.set(database=name).render_as_string(hide_password=False)


POSTGRES_URL = _worker_database(os.environ.get("UNIBATCH_TEST_POSTGRES_URL"))


def reset_postgres(url: str) -> None:
    """Drop everything, so each test starts from an empty schema whatever tables exist."""

    async def reset() -> None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                await conn.execute(sa.text("CREATE SCHEMA public"))
        finally:
            await engine.dispose()

    asyncio.run(reset())


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or the test PostgreSQL wiped clean."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'unibatch.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("UNIBATCH_TEST_POSTGRES_URL is not set")
    reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'unibatch.db'}"


@pytest.fixture
def fast_settings() -> Settings:
    """Settings for tests: polls every 0.1 s, short leases, retries sent at once."""
    return Settings(poll_schedule=(0.1,), lease_seconds=10.0, worker_idle=0.05, retry_backoff=0.0)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The test PostgreSQL, wiped clean (skips when UNIBATCH_TEST_POSTGRES_URL is unset)."""
    if not POSTGRES_URL:
        pytest.skip("UNIBATCH_TEST_POSTGRES_URL is not set")
    reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """The knobs the `emulator` fixture starts from: a batch completes in about 0.13 s.

    Override this fixture in a conftest or module for other defaults, or parametrize
    `emulator` indirectly with a dict of knobs for one test::

        @pytest.mark.parametrize("emulator", [{"in_progress_seconds": 60.0}], indirect=True)
    """
    # Bedrock jobs of any size: tests send a few requests, not the service's 100.
    return EmulatorConfig(time_scale=0.05, min_batch_records=1)


@pytest.fixture
def emulator(
    request: pytest.FixtureRequest, emulator_config: EmulatorConfig
) -> Iterator[RunningEmulator]:
    """Every provider's emulator on one loopback server, sharing `emulator_config`."""
    knobs = getattr(request, "param", None)
    if knobs:
        emulator_config.update(knobs)
    with running_emulator(emulator_config) as running:
        yield running


@pytest.fixture
def emulator_clock(emulator: RunningEmulator) -> ShiftedClock:
    """The clock every mounted emulator reads batch schedules from, for a test to move
    forward (Gemini's Files API keeps the wall clock for file timestamps)."""
    clock = ShiftedClock()
    for provider in emulator.emulators.values():
        provider.clock = clock
    return clock


@pytest.fixture
async def engine(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> AsyncIterator[Engine]:
    eng = await open_engine(database_url, emulator, fast_settings)
    yield eng
    await eng.aclose()
