"""How fast `unibatch results -o` writes a finished batch's results, in both formats,
beside a plain SQLite read of the same rows, in the same run.

    python bench/export.py                   # 100,000 results, median of 3
    python bench/export.py --requests 20000 --repeat 5

Prepared, not timed: a SQLite store in a temporary directory gets a batch of N chat
requests (`Engine.create_batch`) and a result for each, written through the store as an
ingest writes them (`decode.records.records` + `Store.insert_results`): ~1.5 KB
chat-completion bodies, 1% errored (with the provider's native row kept), 1% expired,
1% cancelled, the rest succeeded; the batch is then marked completed.

Timed: `python -m unibatch results ID -o FILE` (`--format openai` and `--format unified`)
as a fresh process each run, start-up included, and `rows/s` = N / its wall time; and
`python -m unibatch status ID`, which starts the same way (the CLI, the store opened, the
batch read) and writes nothing: `rows/s after start-up` = N / (results - status). The
baseline reads the stored bodies in input order with one plain `sqlite3` query and writes
each (unpacked, as stored) plus a newline to a file, in this process: the least an export
can do. Figures go to stdout and bench/out/export-<N>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from _bytecode import compile_unibatch

OUT = Path(__file__).parent / "out"
CHUNK = 5000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def completion(i: int) -> dict[str, object]:
    text = f"Answer {i}: " + "the quick brown fox jumps over the lazy dog. " * 26
    return {
        "id": f"chatcmpl-{i:08d}",
        "object": "chat.completion",
        "created": 1764460800,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 40, "completion_tokens": 290, "total_tokens": 330},
        "system_fingerprint": "fp_0123456789",
    }


async def prepare(url: str, n: int) -> str:
    """A completed batch of `n` results in the store at `url`; its id."""
    from unibatch.config import Settings
    from unibatch.decode.records import records
    from unibatch.engine import Engine
    from unibatch.pricing import Rates
    from unibatch.providers.base import ResultRow
    from unibatch.providers.registry import ProviderSet
    from unibatch.store.tables import batches, jobs
    from unibatch.types import ErrorInfo, RequestStatus, Usage

    engine = await Engine.open(
        url, settings=Settings(), providers=ProviderSet({"OPENAI_API_KEY": "bench"})
    )
    try:
        lines = (
            {
                "custom_id": f"req-{i:07d}",
                "body": {
                    "model": "openai/gpt-4o-mini",
                    "messages": [{"role": "user", "content": f"question {i}"}],
                },
            }
            for i in range(n)
        )
        batch_id = await engine.create_batch(lines)
        async with engine.store.engine.begin() as conn:
            await conn.execute(jobs.update().values(lease_owner="bench", lease_until=1e12))
        rates = Rates(input=7.5e-8, cached_input=3.75e-8, output=3e-7)
        for job in await engine.store.jobs_of(batch_id):
            async with engine.store.engine.connect() as conn:
                ids = (
                    await conn.exec_driver_sql(
                        "SELECT custom_id FROM requests WHERE job_id = ? ORDER BY seq", (job.id,)
                    )
                ).all()
            for start in range(0, len(ids), CHUNK):
                rows = []
                for (custom_id,) in ids[start : start + CHUNK]:
                    i = int(custom_id.split("-")[1])
                    if i % 100 == 1:
                        row = ResultRow(
                            custom_id=custom_id,
                            status=RequestStatus.ERRORED,
                            status_code=429,
                            error=ErrorInfo("rate_limit_exceeded", "Rate limit reached", True),
                            raw=b'{"id": "batch_req_x", "error": {"code": "rate_limit_exceeded"}}',
                        )
                    elif i % 100 in (2, 3):
                        status = RequestStatus.EXPIRED if i % 100 == 2 else RequestStatus.CANCELLED
                        row = ResultRow(
                            custom_id=custom_id,
                            status=status,
                            error=ErrorInfo(f"batch_{status.value}", "not run"),
                        )
                    else:
                        row = ResultRow(
                            custom_id=custom_id,
                            status=RequestStatus.SUCCEEDED,
                            status_code=200,
                            body=completion(i),
                            usage=Usage(input_tokens=40, output_tokens=290),
                            row_id=f"batch_req_{i:08d}",
                            request_id=f"req_{i:08d}",
                        )
                    rows.append(row)
                built, _ = records(batch_id, job.id, rates, rows, now=time.time())
                await engine.store.insert_results(
                    built, job_id=job.id, owner="bench", lease_until=1e12
                )
        async with engine.store.engine.begin() as conn:
            await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id)
                .values(status="completed", finished_at=time.time())
            )
        return batch_id
    finally:
        await engine.aclose()


def baseline(db_path: Path, batch_id: str, dest: Path) -> float:
    """One plain query, the stored bodies written out with a newline: seconds."""
    start = time.perf_counter()
    conn = sqlite3.connect(db_path)
    cursor = conn.execute(
        "SELECT r.body FROM requests q JOIN results r"
        " ON r.batch_id = q.batch_id AND r.custom_id = q.custom_id"
        " WHERE q.batch_id = ? ORDER BY q.seq",
        (batch_id,),
    )
    with dest.open("wb") as handle:
        while rows := cursor.fetchmany(CHUNK):
            out = []
            for (body,) in rows:
                if body is None:
                    out.append(b"null\n")
                elif body[:1] == b"z":
                    out.append(zlib.decompress(body[1:]) + b"\n")
                else:
                    out.append(body[1:] + b"\n")
            handle.write(b"".join(out))
    conn.close()
    return time.perf_counter() - start


def export(url: str, batch_id: str, fmt: str, dest: Path) -> float:
    if fmt == "status":
        cmd = [sys.executable, "-m", "unibatch", "status", batch_id, "--database", url]
    else:
        cmd = [sys.executable, "-m", "unibatch", "results", batch_id, "-o", str(dest)]
        cmd += ["--format", fmt, "--database", url]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each (median)")
    opts = parser.parse_args()
    compile_unibatch()
    n = opts.requests
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db_path = tmp / "export.db"
        url = f"sqlite:///{db_path}"
        log(f"preparing {n:,} results (not timed)...")
        start = time.perf_counter()
        batch_id = asyncio.run(prepare(url, n))
        log(f"prepared in {time.perf_counter() - start:.1f} s")
        runs: dict[str, list[float]] = {"baseline": [], "openai": [], "unified": [], "status": []}
        sizes: dict[str, int] = {}
        # Interleaved, so a burst of load on the machine hits each alike.
        for i in range(opts.repeat):
            for name in runs:
                dest = tmp / f"{name}.jsonl"
                if name == "baseline":
                    seconds = baseline(db_path, batch_id, dest)
                else:
                    seconds = export(url, batch_id, name, dest)
                runs[name].append(seconds)
                if dest.exists():
                    sizes[name] = dest.stat().st_size
                    dest.unlink()
                log(f"run {i + 1} {name}: {seconds:.2f} s")
    start_up = statistics.median(runs.pop("status"))
    figures = {
        name: {
            "median_s": statistics.median(ts),
            "rows_per_s": n / statistics.median(ts),
            # None when the export is too short to tell from the start-up's noise.
            "rows_per_s_after_start_up": (
                n / (statistics.median(ts) - start_up)
                if name != "baseline" and statistics.median(ts) > start_up * 1.2
                else None
            ),
            "runs_s": ts,
            "bytes": sizes[name],
        }
        for name, ts in runs.items()
    }
    labels = {
        "baseline": "baseline: sqlite3 read + write bodies",
        "openai": "unibatch results -o (openai)",
        "unified": "unibatch results -o --format unified",
    }
    print(f"{n:,} results, median of {opts.repeat}; start-up (unibatch status) {start_up:.2f} s")
    print(f"{'':<40} {'seconds':>8} {'rows/s':>10} {'after start-up':>15} {'MB':>7}")
    for name, f in figures.items():
        after = f["rows_per_s_after_start_up"]
        shown = "" if after is None else f"{after:,.0f}"
        print(
            f"{labels[name]:<40} {f['median_s']:>8.2f} {f['rows_per_s']:>10,.0f}"
            f" {shown:>15} {f['bytes'] / 1e6:>7.1f}"
        )
    OUT.mkdir(exist_ok=True)
    summary = {"requests": n, "start_up_s": start_up, **figures}
    (OUT / f"export-{n}.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
