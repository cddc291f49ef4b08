"""Child process of ``bench/wait.py``: one side of the comparison, alone in its process.

``wait``  a fresh process (a worker that has just started) opens the database holding a
          batch ``unibatch submit`` stored, warms what a long-running worker has already
          loaded, and runs the engine until the batch is terminal: upload, create, poll,
          ingest, finalize. Timed, with the peak RSS of this process and its decoder helper.
``lean``  the baseline: httpx uploads the file, creates the batch, polls until it is
          completed, streams the output file, ``orjson.loads`` each line and writes
          (custom_id, response body) with ONE ``executemany`` into a plain SQLite table.

The figures are printed as ONE JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from _ingest_child import (
    RssSampler,
    log,
    open_engine,
    peak_rss_mb,
    run_until_terminal,
    vm_hwm_mb,
)

POLL_SECONDS = 0.05
# Store calls that mark the end of a phase: every job uploaded and created (`job_running`),
# polled to its end (`job_ingesting`), ingested (`finish_job`), the batch `finalize`d.
PHASE_MARKS = ("job_running", "job_ingesting", "finish_job", "finalize")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a live process (Linux), 0 without one."""
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mark_phases(store: Any, t0: list[float], marks: dict[str, float]) -> None:
    """Record, per store call of `PHASE_MARKS`, when its last call ended (seconds from
    `t0[0]`): where the wait's time goes, by phase."""
    for name in PHASE_MARKS:
        method = getattr(store, name)

        async def timed(*args: Any, _method: Any = method, _name: str = name, **kw: Any) -> Any:
            try:
                return await _method(*args, **kw)
            finally:
                marks[_name] = round(time.perf_counter() - t0[0], 3)

        setattr(store, name, functools.wraps(method)(timed))


async def wait(args: argparse.Namespace) -> dict[str, Any]:
    engine = await open_engine(args.database_url, args.base_url)
    try:
        jobs = await engine.store.jobs_of(args.batch_id)
        # Paid once by a long-running worker, not per batch (as in bench/ingest.py).
        for job in jobs:
            engine.providers.get(job.provider)
            engine.pricer.price(job.provider, job.model)
        threshold = engine.settings.ingest_process_from
        if threshold and any(job.request_count >= threshold for job in jobs):
            await engine.ctx.decoder().start(warm=sorted({job.provider for job in jobs}))
        rss_before = peak_rss_mb()
        log(f"waiting for {len(jobs)} jobs")
        start: list[float] = [0.0]
        marks: dict[str, float] = {}
        mark_phases(engine.store, start, marks)
        decoder_pid = engine.ctx.decoder().pid
        with RssSampler() as sampler:
            cpu0, decoder_cpu0 = time.process_time(), cpu_seconds(decoder_pid)
            t0 = start[0] = time.perf_counter()
            status = await run_until_terminal(engine, args.batch_id, args.limit)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            decoder_cpu = cpu_seconds(engine.ctx.decoder().pid) - decoder_cpu0
        batch = await engine.get_batch(args.batch_id)
        decoder_peak = vm_hwm_mb(engine.ctx.decoder().pid)
    finally:
        await engine.aclose()
    log(f"batch {status.value} after {wall:.2f}s")
    return {
        "status": status.value,
        "wall_seconds": round(wall, 4),
        "cpu_seconds": round(cpu, 3),
        "decoder_cpu_seconds": round(decoder_cpu, 3),
        "phase_ends": marks,
        "succeeded": batch.request_counts.succeeded,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "decoder_peak_rss_mb": round(decoder_peak, 1),
        "peak_rss_total_mb": round(peak_rss_mb() + decoder_peak, 1),
        "peak_rss_sampled_mb": round(sampler.peak, 1),
        "peak_rss_before_mb": round(rss_before, 1),
        "rss_timeline_mb": sampler.samples,
    }


def _lines(response: httpx.Response) -> Iterator[bytes]:
    rest = b""
    for chunk in response.iter_bytes(256 * 1024):
        *complete, rest = (rest + chunk).split(b"\n")
        yield from (line for line in complete if line)
    if rest.strip():
        yield rest


def _rows(response: httpx.Response) -> Iterator[tuple[str, bytes]]:
    for line in _lines(response):
        row = orjson.loads(line)
        answer = row.get("response")
        body = answer.get("body") if answer else row.get("error")
        yield row["custom_id"], orjson.dumps(body)


def _all_rows(client: httpx.Client, batches: list[dict[str, Any]]) -> Iterator[tuple[str, bytes]]:
    for batch in batches:
        for key in ("output_file_id", "error_file_id"):
            if batch.get(key):
                with client.stream("GET", f"files/{batch[key]}/content") as response:
                    yield from _rows(response)


def lean(args: argparse.Namespace) -> dict[str, Any]:
    conn = sqlite3.connect(args.sqlite_path, isolation_level=None)
    conn.execute("PRAGMA page_size=16384")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE results (custom_id TEXT, body BLOB)")
    base_url = args.base_url.rstrip("/") + "/"
    headers = {"Authorization": "Bearer bench"}
    with (
        httpx.Client(base_url=base_url, headers=headers, timeout=600) as client,
        RssSampler() as sampler,
    ):
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        marks: dict[str, float] = {}
        batches = []
        # One provider batch per part file: OpenAI takes at most 50,000 requests in one.
        for part in args.requests_file:
            with Path(part).open("rb") as fh:
                uploaded = client.post(
                    "files",
                    data={"purpose": "batch"},
                    files={"file": ("requests.jsonl", fh, "application/jsonl")},
                )
            uploaded.raise_for_status()
            created = client.post(
                "batches",
                json={
                    "input_file_id": uploaded.json()["id"],
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                },
            )
            created.raise_for_status()
            batches.append(created.json())
        marks["created"] = round(time.perf_counter() - t0, 3)
        for i, batch in enumerate(batches):
            while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(POLL_SECONDS)
                batch = batches[i] = client.get(f"batches/{batch['id']}").json()
        marks["polled"] = round(time.perf_counter() - t0, 3)
        statuses = sorted({batch["status"] for batch in batches})
        conn.execute("BEGIN")
        rows = conn.executemany("INSERT INTO results VALUES (?, ?)", _all_rows(client, batches))
        conn.execute("COMMIT")
        rows_written = rows.rowcount
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    conn.close()
    log(f"lean client: {rows_written} rows after {wall:.2f}s")
    return {
        "status": ",".join(statuses),
        "wall_seconds": round(wall, 4),
        "cpu_seconds": round(cpu, 3),
        "phase_ends": marks,
        "rows": rows_written,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "peak_rss_sampled_mb": round(sampler.peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("phase", choices=["wait", "lean"])
    parser.add_argument("--base-url", required=True, help="OPENAI_BASE_URL of the emulator")
    parser.add_argument("--database-url", help="wait: the store holding the batch")
    parser.add_argument("--batch-id", help="wait: the batch `unibatch submit` stored")
    parser.add_argument("--limit", type=int, default=10, help="wait: run_once limit")
    parser.add_argument(
        "--requests-file", action="append", help="lean: an OpenAI batch JSONL to upload"
    )
    parser.add_argument("--sqlite-path", help="lean: the plain SQLite file to write")
    args = parser.parse_args()
    figures = asyncio.run(wait(args)) if args.phase == "wait" else lean(args)
    sys.stdout.write(orjson.dumps(figures).decode() + "\n")


if __name__ == "__main__":
    main()
