"""Queue limits: the planner's rate on a 10M-line file (memory flat), and what the
queue-aware scheduler adds to each job it sends.

    python bench/queue_limits.py                          # plan 1M and 10M lines; claims on SQLite
    python bench/queue_limits.py --lines 1000000          # one size only
    python bench/queue_limits.py --skip-plan --database postgresql://postgres@127.0.0.1/bench_q

Planning: a JSONL file of N chat requests for `openai/gpt-4o-mini` (short line shape,
~150 bytes a line) is written to a temporary directory (not timed), then a fresh child
process reads it as `Engine.create_batch` does (`RequestReader`: parse, validate,
translate-check, count bytes and input tokens with gpt-4o-mini's tokenizer, plan jobs to
half of a 2,000,000-token enqueued limit) and drops the request rows instead of storing
them: the import's database writes are `bench/wait.py`'s subject. Printed: lines/s, the
share of it spent counting tokens (`input_tokens` timed alone on the same bodies), jobs
planned, and the child's peak RSS (`ru_maxrss`): flat means the same at 1M and 10M.

Scheduler: a store holding F jobs in flight (`submitting`) and 500 pending ones; each
pending job is claimed (`claim_jobs`) and then marked `submitting` either as before
(`job_submitting`: one conditional UPDATE) or through `claim_capacity` (the provider's
queue lock, the in-flight sums, the learned limits, the UPDATE), interleaved. Printed:
µs per job for each, and the difference: the scheduler's overhead per submitted job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

OUT = Path(__file__).parent / "out"
MODEL = "openai/gpt-4o-mini"


def write_file(path: Path, n: int) -> None:
    with path.open("wb") as handle:
        chunk = []
        for i in range(n):
            chunk.append(
                orjson.dumps(
                    {
                        "custom_id": f"r{i}",
                        "body": {
                            "model": MODEL,
                            "messages": [
                                {"role": "user", "content": f"Summarise item {i} in one line."}
                            ],
                            "max_tokens": 50,
                        },
                    }
                )
            )
            if len(chunk) == 10_000:
                handle.write(b"\n".join(chunk) + b"\n")
                chunk = []
        if chunk:
            handle.write(b"\n".join(chunk) + b"\n")


def plan_child(path: str) -> None:
    """Read and plan the file as an import does, storing nothing; print JSON figures."""
    from unibatch.config import Settings
    from unibatch.engine.inputs import RequestReader
    from unibatch.engine.plan import Planner
    from unibatch.engine.queue import JOB_SHARE, configured_limits
    from unibatch.engine.queue_tokens import input_tokens
    from unibatch.providers.registry import ProviderSet
    from unibatch.store.queue import ENQUEUED_TOKENS

    # OpenAI assumes no limit of its own; this is a tier's gpt-4o-mini figure. With a limit
    # in force, OpenAI requests are counted with the model's tokenizer.
    settings = Settings(queue_limits={f"{MODEL}.{ENQUEUED_TOKENS}": 2_000_000})
    providers = ProviderSet({"OPENAI_API_KEY": "bench"})

    def limit(spec: Any, model: str) -> int | None:
        found = [
            lim.value
            for lim in configured_limits(settings, spec, model)
            if lim.kind == ENQUEUED_TOKENS
        ]
        return min(found) if found else None

    planner = Planner("ubb_bench", time.time(), token_limit=limit, token_share=JOB_SHARE)
    reader = RequestReader(path, batch_id="ubb_bench", planner=planner, providers=providers)
    start = time.perf_counter()
    for _chunk in reader.iter_chunks():
        pass
    wall = time.perf_counter() - start
    # Before the bodies below are loaded: the planning's peak, start-up included.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The token count alone, on the first 200k bodies.
    bodies = []
    with open(path, "rb") as handle:
        for _, line in zip(range(200_000), handle, strict=False):
            bodies.append(orjson.loads(line)["body"])
    t0 = time.perf_counter()
    for body in bodies:
        input_tokens("openai", "gpt-4o-mini", "/v1/chat/completions", body, exact=True)
    per_token_count = (time.perf_counter() - t0) / len(bodies)
    print(
        json.dumps(
            {
                "lines": reader.count,
                "wall_s": wall,
                "lines_per_s": reader.count / wall,
                "token_count_us": per_token_count * 1e6,
                "token_share": per_token_count * reader.count / wall,
                "jobs": len(planner.jobs),
                "tokens": sum(j.input_tokens for j in planner.jobs),
                "peak_rss_mb": peak_mb,
            }
        )
    )


def plan(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="unibatch-bench-queue-") as folder:
        for n in sizes:
            path = Path(folder) / f"{n}.jsonl"
            print(f"writing {n:,} lines ...", file=sys.stderr)
            write_file(path, n)
            print(f"planning {n:,} lines ...", file=sys.stderr)
            done = subprocess.run(
                [sys.executable, __file__, "--plan-child", str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            path.unlink()
    return rows


async def claims(database: str, in_flight: int, pending: int = 500) -> dict[str, float]:
    from unibatch.store.db import open_store
    from unibatch.store.queue import ENQUEUED_TOKENS, Limit, Need

    store = await open_store(database)
    now = time.time()
    batch = {
        "id": "ubb_q",
        "status": "validating",
        "endpoint": "/v1/chat/completions",
        "created_at": now,
        "metadata": {},
        "errors": [],
        "cancel_requested": False,
        "max_attempts": 1,
        "handler_state": "none",
        "handler_attempts": 0,
        "request_total": 0,
        "lease_owner": "bench",
        "lease_until": now + 3600,
    }

    def job(i: int, phase: str) -> dict[str, Any]:
        return {
            "id": f"ubj_{phase}_{i:06d}",
            "batch_id": "ubb_q",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "endpoint": "/v1/chat/completions",
            "mode": "batch",
            "phase": phase,
            "status": "pending" if phase == "pending" else "in_progress",
            "request_count": 1000,
            "byte_count": 100_000,
            "input_tokens": 10_000,
            "errors": [],
            "next_run_at": now if phase == "pending" else now + 3600,
        }

    rows = [job(i, "running") for i in range(in_flight)] + [
        job(i, "pending") for i in range(pending)
    ]
    await store.start_import(batch)
    await store.finish_import("ubb_q", "bench", rows, endpoint="/v1/chat/completions", now=now)
    # Limits that every job fits: the cost measured is the check's, not a wait.
    configured = [Limit("openai", "gpt-4o-mini", ENQUEUED_TOKENS, 10**15)]
    times: dict[str, list[float]] = {"before": [], "queue": []}
    try:
        for n in range(pending):
            (claimed,) = await store.claim_jobs("bench", time.time(), lease=600, limit=1)
            kind = "queue" if n % 2 else "before"
            start = time.perf_counter()
            if kind == "queue":
                need = Need(claimed.model, claimed.input_tokens, claimed.request_count)
                verdict = await store.claim_capacity(
                    claimed.id, "bench", need, configured, configured, attempts=1, retry_at=now
                )
                assert verdict.ok
            else:
                assert await store.job_submitting(claimed.id, "bench", attempts=1)
            times[kind].append(time.perf_counter() - start)
    finally:
        await store.aclose()
    before = statistics.median(times["before"]) * 1e6
    queue = statistics.median(times["queue"]) * 1e6
    return {
        "in_flight": in_flight,
        "before_us": before,
        "queue_us": queue,
        "extra_us": queue - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, action="append")
    parser.add_argument("--database", default=None)
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--plan-child")
    args = parser.parse_args()
    if args.plan_child:
        plan_child(args.plan_child)
        return
    OUT.mkdir(exist_ok=True)
    report: dict[str, Any] = {"load": os.getloadavg()}
    if not args.skip_plan:
        report["plan"] = plan(args.lines or [1_000_000, 10_000_000])
        print(
            f"{'lines':>12} {'lines/s':>10} {'tokens µs':>10} {'token share':>12} "
            f"{'jobs':>6} {'peak MB':>8}"
        )
        for row in report["plan"]:
            print(
                f"{row['lines']:>12,} {row['lines_per_s']:>10,.0f} "
                f"{row['token_count_us']:>10.2f} {row['token_share']:>12.1%} "
                f"{row['jobs']:>6} {row['peak_rss_mb']:>8.0f}"
            )
    report["claims"] = []
    for in_flight in (10, 100, 1000):
        with tempfile.TemporaryDirectory(prefix="unibatch-bench-queue-") as folder:
            database = args.database or f"sqlite:///{folder}/queue.db"
            if args.database:
                _reset(args.database)
            report["claims"].append(asyncio.run(claims(database, in_flight)))
    print(f"{'in flight':>10} {'before µs':>10} {'queue µs':>10} {'extra µs':>10}")
    for row in report["claims"]:
        print(
            f"{row['in_flight']:>10} {row['before_us']:>10.0f} {row['queue_us']:>10.0f} "
            f"{row['extra_us']:>10.0f}"
        )
    print(f"load average at the end: {os.getloadavg()}")
    (OUT / "queue_limits.json").write_text(json.dumps(report, indent=2))


def _reset(url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from unibatch.store.db import async_url

    async def reset() -> None:
        engine = create_async_engine(async_url(url))
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


if __name__ == "__main__":
    main()
