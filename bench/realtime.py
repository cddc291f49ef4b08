"""The real-time runner's throughput against a bare client on the same emulator.

    python bench/realtime.py                       # 2,000 requests, 8 in flight, SQLite
    python bench/realtime.py --requests 5000 --concurrency 16 --repeat 3
    python bench/realtime.py --database postgresql://postgres@127.0.0.1/bench_rt

Both sides send the same chat-completions requests to the `local` emulator endpoint
(`unibatch emulate` in a subprocess, so its CPU is not ours), the same number in flight,
without rate limits:

- baseline: an `httpx.AsyncClient` with N concurrent senders, each answer parsed with
  orjson and kept in a list; nothing stored;
- runner: `Engine.wait` on a stored `local/...` batch (created before timing): the
  runner's send markers, per-answer commits, result records and the batch's finalize.

Printed: wall time, requests/s, this process's CPU seconds, and the runner's requests/s
as a share of the baseline's (the median of `--repeat` runs each, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import Emulator

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.providers.registry import ProviderSet


def bodies(n: int) -> list[dict[str, Any]]:
    return [
        {
            "model": "bench-model",
            "messages": [{"role": "user", "content": f"Say something about {i}."}],
            "max_tokens": 50,
        }
        for i in range(n)
    ]


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def baseline(base_url: str, n: int, concurrency: int) -> tuple[float, float]:
    todo = iter(bodies(n))
    answers: list[Any] = []
    async with httpx.AsyncClient(base_url=base_url + "/", timeout=60) as client:

        async def sender() -> None:
            for body in todo:
                response = await client.post("chat/completions", content=orjson.dumps(body))
                response.raise_for_status()
                answers.append(orjson.loads(response.content))

        start, start_cpu = time.perf_counter(), cpu()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        wall, used = time.perf_counter() - start, cpu() - start_cpu
    assert len(answers) == n
    return wall, used


async def runner(base_url: str, database: str, n: int, concurrency: int) -> tuple[float, float]:
    settings = Settings(
        database_url=database,
        realtime_concurrency=concurrency,
        poll_schedule=(0.1,),
        worker_idle=0.01,
    )
    providers = ProviderSet({"UNIBATCH_LOCAL_BASE_URL": base_url})
    engine = await Engine.open(database, settings=settings, providers=providers)
    try:
        lines = [
            {"custom_id": f"r-{i}", "body": {**body, "model": "local/bench-model"}}
            for i, body in enumerate(bodies(n))
        ]
        batch_id = await engine.create_batch(lines)
        start, start_cpu = time.perf_counter(), cpu()
        batch = await engine.wait(batch_id, interval=0.01)
        wall, used = time.perf_counter() - start, cpu() - start_cpu
        assert batch.request_counts.succeeded == n, batch.request_counts
    finally:
        await engine.aclose()
    return wall, used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--database", default="sqlite", help="sqlite, or a PostgreSQL URL")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="unibatch-bench-rt-") as name:
        tmp = Path(name)
        emulator = Emulator(tmp / "emulator.log", time_scale=1.0)
        local = emulator.base_url.replace("/openai/v1", "/local/v1")
        base: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        try:
            for run in range(opts.repeat):
                base.append(asyncio.run(baseline(local, opts.requests, opts.concurrency)))
                database = opts.database
                if database == "sqlite":
                    database = f"sqlite:///{tmp / f'run{run}.db'}"
                ours.append(asyncio.run(runner(local, database, opts.requests, opts.concurrency)))
        finally:
            emulator.stop()
    load = os.getloadavg()
    print(
        f"{opts.requests} requests, {opts.concurrency} in flight, {opts.database}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"{'':10} {'wall s':>8} {'req/s':>8} {'CPU s':>7}")
    rates = {}
    for label, runs in (("baseline", base), ("runner", ours)):
        wall = statistics.median(w for w, _ in runs)
        used = statistics.median(c for _, c in runs)
        rates[label] = opts.requests / wall
        print(f"{label:10} {wall:8.2f} {rates[label]:8.0f} {used:7.2f}")
    print(f"runner / baseline throughput: {rates['runner'] / rates['baseline']:.2f}x")


if __name__ == "__main__":
    main()
