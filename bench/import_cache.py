"""Import rate with and without the result cache (`Engine.create_batch`, nothing sent).

    python bench/import_cache.py                       # 100,000 requests, SQLite, 3 runs
    python bench/import_cache.py --requests 20000 --repeat 5
    python bench/import_cache.py --database postgresql://postgres@127.0.0.1/bench

Three imports of the same file per run, each on a fresh SQLite file (or, on PostgreSQL,
into the database given, which grows): without the cache, with it (no answers stored
yet: the keys are made, looked up and indexed), and with it again (every request
answered from the store). Prints the median wall and CPU seconds of each and the rate
in requests per second of wall time. To time another revision without the cache (the
"before" figure), run it with PYTHONPATH pointing at that revision's `src` and
`--no-cache`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.providers.registry import ProviderSet


def write_requests(path: Path, n: int) -> None:
    with path.open("wb") as fh:
        for i in range(n):
            body = {
                "model": "openai/gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You label support tickets."},
                    {"role": "user", "content": f"Ticket {i}: my order is {i % 97} days late."},
                ],
                "max_tokens": 50,
            }
            fh.write(orjson.dumps({"custom_id": f"r{i}", "body": body}) + b"\n")


async def timed(engine: Engine, path: Path, **kwargs: Any) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    await engine.create_batch(path, **kwargs)
    return time.perf_counter() - wall, time.process_time() - cpu


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", help="postgresql://...; default: SQLite files")
    parser.add_argument("--no-cache", action="store_true", help="only the import without it")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    path = tmp / "requests.jsonl"
    write_requests(path, args.requests)
    providers = {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": "http://127.0.0.1:9"}
    runs: dict[str, list[tuple[float, float]]] = {}
    for run in range(args.repeat):
        url = args.database or f"sqlite:///{tmp / f'run{run}.db'}"
        engine = await Engine.open(
            url, settings=Settings(database_url=url), providers=ProviderSet(providers)
        )
        try:
            runs.setdefault("without the cache", []).append(await timed(engine, path))
            if not args.no_cache:
                from unibatch.engine.cache import CachePolicy

                for label in ("with it, nothing stored yet", "with it, all answered"):
                    runs.setdefault(label, []).append(
                        await timed(engine, path, cache=CachePolicy())
                    )
        finally:
            await engine.aclose()
    print(f"{args.requests} requests, {args.database or 'SQLite'}, median of {args.repeat}")
    for label, times in runs.items():
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        rate = args.requests / wall
        print(f"  {label:30} wall {wall:6.2f} s  cpu {cpu:6.2f} s  {rate:9,.0f} req/s")


if __name__ == "__main__":
    asyncio.run(main())
