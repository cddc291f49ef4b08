"""Shared fixtures: databases (SQLite file and PostgreSQL) and settings.

PostgreSQL tests run when UNIBATCH_TEST_POSTGRES_URL is set; then an unreachable
server fails the run instead of skipping (CI sets it).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from unibatch.config import Settings
from unibatch.store.db import async_url

POSTGRES_URL = os.environ.get("UNIBATCH_TEST_POSTGRES_URL")


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
    """Settings for tests: polls every 0.1 s, short leases."""
    return Settings(poll_schedule=(0.1,), lease_seconds=10.0, worker_idle=0.05)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The test PostgreSQL, wiped clean (skips when UNIBATCH_TEST_POSTGRES_URL is unset)."""
    if not POSTGRES_URL:
        pytest.skip("UNIBATCH_TEST_POSTGRES_URL is not set")
    reset_postgres(POSTGRES_URL)
    yield POSTGRES_URL
