"""Reading the test database directly, from tests whose engine runs in another process."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from unibatch.store.db import create_engine


def scalar(url: str, query: sa.Executable) -> Any:
    """The first column of the first row `query` returns."""

    async def go() -> Any:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(query)).scalar()
        finally:
            await engine.dispose()

    return asyncio.run(go())
