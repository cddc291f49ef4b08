"""The Python API: `AsyncClient`, and `Client`, its synchronous twin.

>>> from unibatch import Client
>>> with Client() as ub:                                   # doctest: +SKIP
...     batch = ub.submit("requests.jsonl", model="openai/gpt-4o-mini")
...     batch = ub.wait(batch.id)
...     for result in ub.results(batch.id):
...         print(result.custom_id, result.status)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.engine.core import ProgressCallback
from unibatch.engine.inputs import Source
from unibatch.gateway.accounting import result_hooks
from unibatch.providers.registry import ProviderSet
from unibatch.types import Batch, Result

T = TypeVar("T")


class AsyncClient:
    """Submit and track batches. The database is `database_url`, else
    `UNIBATCH_DATABASE_URL`, else a SQLite file in the user's data directory."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._database_url = database_url
        self._settings = settings
        self._env = env
        self._engine: Engine | None = None

    async def _get_engine(self) -> Engine:
        if self._engine is None:
            settings = self._settings or Settings()
            self._engine = await Engine.open(
                self._database_url,
                settings=settings,
                providers=ProviderSet(self._env, timeout=settings.http_timeout),
                # Any process that ingests may ingest a gateway batch (`unibatch worker`
                # runs on a client): its usage is recorded with its results.
                result_hooks=result_hooks(),
            )
        return self._engine

    async def __aenter__(self) -> AsyncClient:
        await self._get_engine()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.aclose()
            self._engine = None

    async def submit(
        self,
        requests: Source,
        *,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_complete: str | None = None,
        max_age: float | None = None,
    ) -> Batch:
        """Store a batch (a JSONL path or an iterable of request dicts). Nothing is sent
        until a worker or `wait` drives it; everything is validated first."""
        engine = await self._get_engine()
        batch_id = await engine.create_batch(
            requests, model=model, metadata=metadata, on_complete=on_complete, max_age=max_age
        )
        return await engine.get_batch(batch_id)

    async def get(self, batch_id: str) -> Batch:
        return await (await self._get_engine()).get_batch(batch_id)

    async def list(self, *, status: str | None = None, limit: int = 100) -> list[Batch]:
        return await (await self._get_engine()).list_batches(status=status, limit=limit)

    async def wait(
        self,
        batch_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        interval: float = 1.0,
    ) -> Batch:
        """Drive the batch until it ends (sharing the work with any running worker)."""
        engine = await self._get_engine()
        return await engine.wait(
            batch_id, on_progress=on_progress, timeout=timeout, interval=interval
        )

    async def results(self, batch_id: str) -> AsyncGenerator[Result, None]:
        engine = await self._get_engine()
        async for result in engine.results(batch_id):
            yield result

    async def cancel(self, batch_id: str) -> Batch:
        return await (await self._get_engine()).cancel(batch_id)

    async def engine(self) -> Engine:
        return await self._get_engine()


class Client:
    """Synchronous `AsyncClient`: each call runs on the client's own event loop."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._runner = asyncio.Runner()
        self._async = AsyncClient(database_url, settings=settings, env=env)

    def _run(self, coro: Any) -> Any:
        return self._runner.run(coro)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._run(self._async.aclose())
        self._runner.close()

    def submit(
        self,
        requests: Source,
        *,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_complete: str | None = None,
        max_age: float | None = None,
    ) -> Batch:
        result: Batch = self._run(
            self._async.submit(
                requests,
                model=model,
                metadata=metadata,
                on_complete=on_complete,
                max_age=max_age,
            )
        )
        return result

    def get(self, batch_id: str) -> Batch:
        result: Batch = self._run(self._async.get(batch_id))
        return result

    def list(self, *, status: str | None = None, limit: int = 100) -> list[Batch]:
        result: list[Batch] = self._run(self._async.list(status=status, limit=limit))
        return result

    def wait(self, batch_id: str, *, timeout: float | None = None, interval: float = 1.0) -> Batch:
        result: Batch = self._run(self._async.wait(batch_id, timeout=timeout, interval=interval))
        return result

    def results(self, batch_id: str) -> Iterator[Result]:
        agen = self._async.results(batch_id)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())

    def cancel(self, batch_id: str) -> Batch:
        result: Batch = self._run(self._async.cancel(batch_id))
        return result
