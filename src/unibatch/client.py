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
import time
from collections.abc import AsyncGenerator, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.engine.cache import cache_policy
from unibatch.engine.core import ProgressCallback
from unibatch.engine.deadline import Deadline
from unibatch.engine.inputs import Source
from unibatch.engine.retry import RetryOutcome
from unibatch.gateway.accounting import result_hooks
from unibatch.pricing import Pricer
from unibatch.providers.registry import ProviderSet, split_model
from unibatch.types import Batch, Result

if TYPE_CHECKING:
    from unibatch.estimate import Estimate

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
        max_attempts: int | None = None,
        fallback_models: Sequence[str] | None = None,
        stuck_after: float | None = None,
        cache: bool = False,
        cache_ttl: float | str | None = None,
        deadline: Deadline | None = None,
        webhook: str | None = None,
        max_cost: float | None = None,
    ) -> Batch:
        """Store a batch (a JSONL path or an iterable of request dicts). Nothing is sent
        until a worker or `wait` drives it; everything is validated first.

        A request that fails in a retryable way (rate limit, server error, expiry, ...) is
        sent again in a follow-up job of the same batch, up to `max_attempts` times in all
        (default 3, `UNIBATCH_MAX_ATTEMPTS`; 1 turns retries off).

        A provider batch that fails, or stays validating / in progress longer than
        `stuck_after` seconds (default 6 h), is cancelled and its unfinished requests go
        to the next of `fallback_models` ("provider/model"), each checked against that
        model's rules first.

        `webhook` is a URL told when the batch ends (`batch.completed`, `batch.failed`,
        `batch.expired`, `batch.cancelled`) or is retried (`batch.retrying`), signed as
        Standard Webhooks with its endpoint's secret: register the URL first
        (`add_webhook`), or set `UNIBATCH_WEBHOOK_SECRET`. Endpoints added with
        `add_webhook` hear of every batch anyway.

        `max_cost` (USD) caps the spend: a batch estimated to cost more at batch prices
        (its input tokens plus each request's max_tokens) is refused with
        `CostLimitError` before anything is sent; a running batch whose results' cost
        plus the estimate of the rest passes it is cancelled, its finished results kept.

        With `cache`, a request whose provider, model, endpoint and body (key order and
        whitespace aside) match one that already succeeded is answered from the store,
        not sent: its result is marked `cached` and costs 0. `cache_ttl` (seconds, or a
        duration such as "7d") takes only answers younger than that.

        >>> ub.submit("prompts.jsonl", cache=True, cache_ttl="7d")  # doctest: +SKIP

        With a `deadline` (a timezone-aware `datetime`, a duration such as "2h", an ISO
        8601 time with its zone such as "2026-12-01T09:00:00Z", or epoch seconds), the
        provider batch is cancelled in time for what is left to run through the real-time
        endpoint (at list price) before it; what had finished is kept. A deadline already
        past raises `InputError`.

        >>> ub.submit("prompts.jsonl", model="openai/gpt-4o-mini", deadline="2h")  # doctest: +SKIP
        """
        engine = await self._get_engine()
        hooks, _ = await engine.webhook_targets(webhook)
        batch_id = await engine.create_batch(
            requests,
            model=model,
            metadata=metadata,
            on_complete=on_complete,
            max_age=max_age,
            max_attempts=max_attempts,
            fallback_models=fallback_models,
            stuck_after=stuck_after,
            cache=cache_policy(cache, cache_ttl),
            deadline=deadline,
            webhooks=hooks,
            max_cost=max_cost,
        )
        return await engine.get_batch(batch_id)

    async def cache_hits(
        self, requests: Source, *, model: str | None = None, cache_ttl: float | str | None = None
    ) -> int:
        """How many requests of `requests` `submit(..., cache=True)` would answer from the
        store now; nothing is stored or sent."""
        engine = await self._get_engine()
        hits = await engine.cache_hits(requests, model=model, cache=cache_policy(True, cache_ttl))
        return sum(hits.values())

    async def add_webhook(self, url: str, *, secret: str | None = None) -> dict[str, Any]:
        """Register a webhook endpoint told of every batch made without a gateway key
        (this API, the CLI, the gateway's master key); `{"id", "url", "secret"}`. The
        secret (a fresh `whsec_...` unless given) is not shown again: keep it.

        >>> hook = ub.add_webhook("https://example.com/hooks")   # doctest: +SKIP
        """
        engine = await self._get_engine()
        row = await engine.store.add_endpoint(url, key_id=None, secret=secret, now=time.time())
        return {"id": row["id"], "url": row["url"], "secret": row["secret"]}

    async def estimate(
        self,
        requests: Source,
        *,
        models: Sequence[str] = (),
        cache: bool = False,
        cache_ttl: float | str | None = None,
    ) -> Estimate:
        """What `requests` (a JSONL path or request dicts) would cost on each of `models`
        ("provider/model", each in place of every line's model) or, without them, on the
        models the lines name. Sends nothing and needs no provider key; with `cache`, each
        model's `cached` counts the requests `submit(..., cache=True, cache_ttl=...)`
        would answer from the store now (this reads the database).

        >>> for m in ub.estimate("requests.jsonl", models=["openai/gpt-4o-mini"]).models:
        ...     print(m.model, m.input_tokens, m.batch_cost)      # doctest: +SKIP
        """
        # Imported here: the tokenizer costs start-up time and memory that only estimates need.
        from unibatch.estimate import Estimator

        settings = self._settings or Settings()
        estimator = Estimator(Pricer.from_settings(settings), models)
        if cache and not isinstance(requests, str | Path | Sequence):
            requests = list(requests)  # read twice: once priced, once looked up
        # Tokenizing is CPU work: a thread keeps the caller's event loop answering.
        result = await asyncio.to_thread(estimator.run, requests)
        if cache:
            await self._count_cached(result, requests, models, cache_ttl)
        return result

    async def _count_cached(
        self,
        result: Estimate,
        requests: Source,
        models: Sequence[str],
        cache_ttl: float | str | None,
    ) -> None:
        engine = await self._get_engine()
        policy = cache_policy(True, cache_ttl)
        if models:
            for entry in result.models:
                if entry.refused:
                    continue  # it refuses lines, which `cache_hits` raises for; 0 stays
                hits = await engine.cache_hits(requests, model=entry.model, cache=policy)
                entry.cached = sum(hits.values())
            return
        hits = await engine.cache_hits(requests, cache=policy)
        for entry in result.models:
            provider, bare_model = split_model(entry.model)
            entry.cached = hits.get(f"{provider}/{bare_model}", 0)

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

    async def retry(
        self,
        batch_id: str,
        *,
        statuses: Collection[str] | None = None,
        model: str | None = None,
        max_attempts: int | None = None,
    ) -> RetryOutcome:
        """Send the failed or unfinished requests of an ended batch again, into the same
        batch (its results then hold the final answer per custom_id), optionally on
        another `model`. `statuses` picks which (default errored, expired, cancelled);
        each gets `max_attempts` more attempts (default 3). Requests the new model's rules
        refuse stay as they were; `RetryOutcome.refused` says why.

        >>> outcome = ub.retry(batch.id, model="anthropic/claude-haiku-4-5")  # doctest: +SKIP
        >>> batch = ub.wait(batch.id)
        """
        engine = await self._get_engine()
        return await engine.retry(
            batch_id, statuses=statuses, model=model, max_attempts=max_attempts
        )

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
        max_attempts: int | None = None,
        fallback_models: Sequence[str] | None = None,
        stuck_after: float | None = None,
        cache: bool = False,
        cache_ttl: float | str | None = None,
        deadline: Deadline | None = None,
        webhook: str | None = None,
        max_cost: float | None = None,
    ) -> Batch:
        result: Batch = self._run(
            self._async.submit(
                requests,
                model=model,
                metadata=metadata,
                on_complete=on_complete,
                max_age=max_age,
                max_attempts=max_attempts,
                fallback_models=fallback_models,
                stuck_after=stuck_after,
                cache=cache,
                cache_ttl=cache_ttl,
                deadline=deadline,
                webhook=webhook,
                max_cost=max_cost,
            )
        )
        return result

    def cache_hits(
        self, requests: Source, *, model: str | None = None, cache_ttl: float | str | None = None
    ) -> int:
        hits: int = self._run(self._async.cache_hits(requests, model=model, cache_ttl=cache_ttl))
        return hits

    def add_webhook(self, url: str, *, secret: str | None = None) -> dict[str, Any]:
        """See `AsyncClient.add_webhook`."""
        result: dict[str, Any] = self._run(self._async.add_webhook(url, secret=secret))
        return result

    def estimate(
        self,
        requests: Source,
        *,
        models: Sequence[str] = (),
        cache: bool = False,
        cache_ttl: float | str | None = None,
    ) -> Estimate:
        result: Estimate = self._run(
            self._async.estimate(requests, models=models, cache=cache, cache_ttl=cache_ttl)
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

    def retry(
        self,
        batch_id: str,
        *,
        statuses: Collection[str] | None = None,
        model: str | None = None,
        max_attempts: int | None = None,
    ) -> RetryOutcome:
        result: RetryOutcome = self._run(
            self._async.retry(batch_id, statuses=statuses, model=model, max_attempts=max_attempts)
        )
        return result
