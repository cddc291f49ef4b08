"""Dashboard and `/metrics` reads on a large store: each read's time, with one batch of N
requests (every one answered, 1% errored) among B finished batches.

    python bench/dashboard.py                               # N = 1,000,000, B = 2,000
    python bench/dashboard.py --requests 200000 --batches 500
    python bench/dashboard.py --database postgresql://postgres@127.0.0.1/bench

Untimed setup: the schema by the migrations, then rows written straight into the tables
(batches, jobs, requests, results, in chunks of 20,000), as a finished batch leaves them.
Timed, each read five times (the median is printed): a `/metrics` scrape's store read,
the first and a deep page of the big batch's request list, a custom_id search, its errors
by class, a page of the batch list with its views, and the usage chart's read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from unibatch import codec
from unibatch.engine.views import batch_views
from unibatch.gateway.ui import reads
from unibatch.store.db import open_store
from unibatch.store.stats import read_stats
from unibatch.store.tables import batches, jobs, requests, results

CHUNK = 20_000


def _batch(i: int, n: int, now: float) -> dict[str, Any]:
    return {
        "id": f"ubb_{i:06d}",
        "status": "completed",
        "endpoint": "/v1/chat/completions",
        "created_at": now - 86400 + i,
        "finished_at": now - 60,
        "metadata": {},
        "errors": [],
        "cancel_requested": False,
        "max_attempts": 1,
        "fallback_models": [],
        "handler_state": "none",
        "handler_attempts": 0,
        "request_total": n,
        "succeeded": n,
        "errored": 0,
        "expired": 0,
        "cancelled": 0,
        "input_tokens": 10 * n,
        "output_tokens": 5 * n,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
        "cache_write_tokens": 0,
        "cost_input": 0.001 * n,
        "cost_output": 0.002 * n,
    }


def _job(i: int, n: int, now: float) -> dict[str, Any]:
    return {
        "id": f"ubj_{i:06d}",
        "batch_id": f"ubb_{i:06d}",
        "provider": "openai",
        "model": f"gpt-4o-mini-{i % 3}",
        "endpoint": "/v1/chat/completions",
        "mode": "batch",
        "phase": "done",
        "status": "completed",
        "request_count": n,
        "byte_count": 100 * n,
        "provider_completed": n,
        "provider_failed": 0,
        "provider_cancelled": 0,
        "errors": [],
        "submitted_at": now - 3600 * (i % 20),
        "cancel_sent": False,
        "submit_attempts": 1,
        "poll_count": 1,
        "transient_errors": 0,
    }


async def setup(url: str, n: int, count: int) -> Any:
    store = await open_store(url)
    now = time.time()
    body = codec.pack({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    answer = codec.pack({"object": "chat.completion", "choices": [{"message": {"content": "ok"}}]})
    async with store.engine.begin() as conn:
        await conn.execute(batches.insert(), [_batch(i, 10, now) for i in range(1, count)])
        await conn.execute(jobs.insert(), [_job(i, 10, now) for i in range(1, count)])
        big = _batch(0, n, now) | {"created_at": now - 30, "errored": n // 100}
        await conn.execute(batches.insert(), [big])
        await conn.execute(jobs.insert(), [_job(0, n, now)])
    for start in range(0, n, CHUNK):
        seqs = range(start, min(n, start + CHUNK))
        async with store.engine.begin() as conn:
            await conn.execute(
                requests.insert(),
                [
                    {
                        "batch_id": "ubb_000000",
                        "seq": s,
                        "custom_id": f"req-{s:07d}",
                        "job_id": "ubj_000000",
                        "body": body,
                        "attempts": 1,
                    }
                    for s in seqs
                ],
            )
            await conn.execute(
                results.insert(),
                [
                    {
                        "batch_id": "ubb_000000",
                        "custom_id": f"req-{s:07d}",
                        "job_id": "ubj_000000",
                        "status": "errored" if s % 100 == 0 else "succeeded",
                        "status_code": 400 if s % 100 == 0 else 200,
                        "error_code": "invalid_request" if s % 100 == 0 else None,
                        "retryable": False,
                        "input_tokens": 10,
                        "output_tokens": 5,
                        "cached_tokens": 0,
                        "reasoning_tokens": 0,
                        "cache_write_tokens": 0,
                        "cost_input": 0.001,
                        "cost_output": 0.002,
                        "body": answer,
                        "created_at": now,
                    }
                    for s in seqs
                ],
            )
    return store


async def timed(what: str, fn: Callable[[], Awaitable[Any]]) -> None:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - started)
    print(f"{what:<44} {1000 * statistics.median(times):8.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--batches", type=int, default=2_000)
    parser.add_argument("--database", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        store = await setup(url, args.requests, args.batches)
        print(
            f"setup: {args.requests} requests, {args.batches} batches in "
            f"{time.perf_counter() - started:.0f} s; load {os.getloadavg()[0]:.1f}"
        )
        big, deep = "ubb_000000", str(args.requests - 100)

        def page(**kw: Any) -> Awaitable[Any]:
            return store.read(lambda c: reads.request_page(c, big, limit=51, **kw))

        await timed("/metrics store read", lambda: store.read(lambda c: read_stats(c, time.time())))
        await timed("requests: first page", lambda: page(search=None, after=None))
        await timed("requests: page at the end", lambda: page(search=None, after=deep))
        await timed(
            "requests: search by custom_id prefix",
            lambda: page(search=f"req-{args.requests // 2:07d}"[:-1], after=None),
        )
        await timed(
            "errors by class (1% errored)",
            lambda: store.read(lambda c: reads.error_classes(c, big)),
        )

        async def listing() -> None:
            ids = await store.read(lambda c: reads.batch_page(c, None, before=None, limit=26))
            await batch_views(store, ids[:25])

        await timed("batch list page (25 views)", listing)
        await timed(
            "usage chart read (14 days)",
            lambda: store.read(lambda c: reads.usage_by_model(c, None, since=0.0)),
        )
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
