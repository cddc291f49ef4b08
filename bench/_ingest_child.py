"""Child process of ``bench/ingest.py``: one phase of the engine, alone in its process.

``prepare``  opens an engine, imports the request file as one batch, then submits and polls
             every provider job until ALL of them sit in the ``ingesting`` phase (no job is
             ingested here).
``ingest``   a fresh process (like a worker restarted after the submit) opens the same
             database and runs the engine until the batch is terminal: this is the timed
             part, and this process's peak RSS is the memory figure of the benchmark.

Progress goes to stderr; the figures are printed as ONE JSON object on the last line of
stdout. Settings not given here come from the environment (``UNIBATCH_INGEST_CHUNK`` ...).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import psutil

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.engine.jobs import run_job_step
from unibatch.providers.registry import ProviderSet
from unibatch.types import BatchStatus

MB = 1024 * 1024


def log(message: str) -> None:
    print(f"[{os.getpid()} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_hwm_mb(pid: int | None) -> float:
    """Peak RSS of another live process (Linux), 0 without one."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / MB


class RssSampler:
    """Samples this process's RSS from a thread: a cross-check of ru_maxrss and a timeline."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.peak = 0.0
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.perf_counter()

    def _run(self) -> None:
        proc = psutil.Process()
        last_kept = -1.0
        while not self._stop.is_set():
            now = time.perf_counter() - self._t0
            value = float(proc.memory_info().rss) / MB
            self.peak = max(self.peak, value)
            if now - last_kept >= 1.0:  # keep one sample a second for the JSON
                self.samples.append((round(now, 2), round(value, 1)))
                last_kept = now
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def settings_for(database_url: str) -> Settings:
    # Poll often (the emulator runs at a fast time scale); a long lease so a slow ingest
    # never loses its jobs to nobody. Everything else: defaults or UNIBATCH_* variables.
    return Settings(database_url=database_url, poll_schedule=(0.05,), lease_seconds=3600.0)


async def open_engine(database_url: str, base_url: str) -> Engine:
    providers = ProviderSet({"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": base_url})
    return await Engine.open(database_url, settings=settings_for(database_url), providers=providers)


# -- prepare -------------------------------------------------------------------------------


async def drive_to_ingesting(engine: Engine, batch_id: str) -> int:
    """Submit and poll every job until all are in `ingesting`; return how many jobs.

    `run_once` would ingest the first jobs to finish while others still poll, so this loop
    claims jobs itself, runs the step of those not yet ingesting and hands the ingesting
    ones straight back (lease released, schedule unchanged).
    """
    ctx = engine.ctx
    last_report = ""
    while True:
        jobs = await engine.store.jobs_of(batch_id)
        phases = Counter(job.phase.value for job in jobs)
        report = ", ".join(f"{phase}={n}" for phase, n in sorted(phases.items()))
        if report != last_report:
            log(f"jobs: {report}")
            last_report = report
        if phases["ingesting"] == len(jobs):
            return len(jobs)
        if phases["done"]:
            failed = [(j.id, j.status, j.last_error) for j in jobs if j.phase == "done"]
            raise RuntimeError(f"jobs ended before ingest: {failed}")
        claimed = await ctx.store.claim_jobs(
            ctx.owner,
            ctx.clock(),
            lease=ctx.settings.lease_seconds,
            limit=len(jobs),
            batch_id=batch_id,
        )
        stepped = 0
        for job in claimed:
            if job.phase == "ingesting":
                await ctx.store.release_job(job.id, ctx.owner)
                continue
            await run_job_step(ctx, job)
            stepped += 1
        if not stepped:
            await asyncio.sleep(0.05)


async def prepare(args: argparse.Namespace) -> dict[str, Any]:
    engine = await open_engine(args.database_url, args.base_url)
    try:
        t0 = time.perf_counter()
        batch_id = await engine.create_batch(args.requests_file)
        import_s = time.perf_counter() - t0
        log(f"imported batch {batch_id} in {import_s:.1f}s; submitting and polling")
        t1 = time.perf_counter()
        jobs = await drive_to_ingesting(engine, batch_id)
        submit_poll_s = time.perf_counter() - t1
        log(f"all {jobs} jobs are ingesting after {submit_poll_s:.1f}s")
    finally:
        await engine.aclose()
    return {
        "batch_id": batch_id,
        "jobs": jobs,
        "import_seconds": round(import_s, 3),
        "submit_poll_seconds": round(submit_poll_s, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


# -- ingest --------------------------------------------------------------------------------


class Timings:
    """Wall time spent inside a few store methods during the timed run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: Counter[str] = Counter()
        self.rows_inserted = 0

    def wrap(self, obj: object, name: str) -> None:
        method: Callable[..., Awaitable[Any]] = getattr(obj, name)

        @functools.wraps(method)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            if name == "insert_results" and args:
                self.rows_inserted += len(args[0])
            t0 = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                spent = time.perf_counter() - t0
                self.seconds[name] = self.seconds.get(name, 0.0) + spent
                self.calls[name] += 1

        setattr(obj, name, timed)


async def run_until_terminal(engine: Engine, batch_id: str, limit: int) -> BatchStatus:
    """What `Engine.wait` does, minus the per-iteration progress view: run every due step
    until the batch row is terminal (jobs ingested, batch finalized)."""
    while True:
        worked = await engine.run_once(batch_id=batch_id, limit=limit)
        row = await engine.store.get_batch(batch_id)
        assert row is not None
        status = row.status
        if status.terminal:
            return status
        if not worked:
            await asyncio.sleep(0.01)


async def ingest(args: argparse.Namespace) -> dict[str, Any]:
    engine = await open_engine(args.database_url, args.base_url)
    timings = Timings()
    for name in ("insert_results", "finalize", "progress"):
        timings.wrap(engine.store, name)
    try:
        jobs = await engine.store.jobs_of(args.batch_id)
        not_ready = [j.id for j in jobs if j.phase != "ingesting"]
        if not_ready:
            raise RuntimeError(f"jobs not in the ingesting phase: {not_ready}")
        # One-time costs a long-running worker pays once, not per batch: the adapter (and
        # httpx) is imported and built on first use, genai-prices on the first price lookup,
        # the decoder process starts with the first large ingest.
        for job in jobs:
            engine.providers.get(job.provider)
            engine.pricer.price(job.provider, job.model)
        threshold = engine.settings.ingest_process_from
        decoder = engine.ctx.decoder()
        if threshold and any(job.request_count >= threshold for job in jobs):
            await decoder.start(warm=sorted({job.provider for job in jobs}))
        rss_start = rss_mb()
        peak_start = peak_rss_mb()
        log(f"ingesting {len(jobs)} jobs (RSS {rss_start:.0f} MB before the timed run)")
        profiler = cProfile.Profile() if args.profile else None
        with RssSampler() as sampler:
            t0 = time.perf_counter()
            cpu0 = time.process_time()
            if profiler is not None:
                profiler.enable()
            status = await run_until_terminal(engine, args.batch_id, args.limit)
            if profiler is not None:
                profiler.disable()
            cpu = time.process_time() - cpu0
            wall = time.perf_counter() - t0
        if profiler is not None:
            profiler.dump_stats(args.profile)
        batch = await engine.get_batch(args.batch_id)
        jobs = await engine.store.jobs_of(args.batch_id)
        counts = batch.request_counts
        log(
            f"batch {status.value}: {timings.rows_inserted} rows from result files "
            f"in {wall:.2f}s ({timings.rows_inserted / wall:,.0f} rows/s)"
        )
        # The decoder helper's own peak, read before the engine stops it. (RUSAGE_CHILDREN
        # would not do: an exec'd child inherits the parent's high-water mark.) Both
        # processes run side by side, so the sum bounds the ingest's memory.
        decoder_peak = vm_hwm_mb(engine.ctx.decoder().pid)
    finally:
        await engine.aclose()
    return {
        "status": status.value,
        "wall_seconds": round(wall, 4),
        "cpu_seconds": round(cpu, 4),
        "rows_ingested": timings.rows_inserted,
        "counts": {
            "total": counts.total,
            "succeeded": counts.succeeded,
            "errored": counts.errored,
            "expired": counts.expired,
            "cancelled": counts.cancelled,
        },
        "ingest_chunk": engine.settings.ingest_chunk,
        "run_once_limit": args.limit,
        "store_seconds": {k: round(v, 4) for k, v in timings.seconds.items()},
        "store_calls": dict(timings.calls),
        "rss_before_mb": round(rss_start, 1),
        "peak_rss_before_mb": round(peak_start, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "decoder_peak_rss_mb": round(decoder_peak, 1),
        "peak_rss_total_mb": round(peak_rss_mb() + decoder_peak, 1),
        "peak_rss_sampled_mb": round(sampler.peak, 1),
        "rss_timeline_mb": sampler.samples,
        "files": [
            {"output_file_id": j.output_file_id, "error_file_id": j.error_file_id, "job_id": j.id}
            for j in jobs
        ],
        "profiled": bool(args.profile),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=["prepare", "ingest"])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--base-url", required=True, help="OPENAI_BASE_URL of the emulator")
    parser.add_argument("--requests-file", help="prepare: the request JSONL")
    parser.add_argument("--batch-id", help="ingest: the batch made by prepare")
    parser.add_argument("--limit", type=int, default=10, help="ingest: run_once limit")
    parser.add_argument("--profile", help="ingest: write cProfile stats of the timed run here")
    args = parser.parse_args()
    if args.phase == "prepare":
        if not args.requests_file:
            parser.error("prepare needs --requests-file")
        figures = asyncio.run(prepare(args))
    else:
        if not args.batch_id:
            parser.error("ingest needs --batch-id")
        figures = asyncio.run(ingest(args))
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")


if __name__ == "__main__":
    main()
