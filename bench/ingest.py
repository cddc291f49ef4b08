"""Ingest benchmark: how fast unibatch lands a provider's result files, against a raw baseline.

    python bench/ingest.py                                   # 100,000 requests, SQLite
    python bench/ingest.py --requests 100000 --requests 1000000
    python bench/ingest.py --database postgresql://user@127.0.0.1/postgres

For each size N: write N chat requests to a temporary JSONL file, start the OpenAI emulator
(``python -m unibatch emulate``), then in child processes (see ``_ingest_child.py``) import,
submit and poll the batch until every job is ``ingesting`` (not timed), and time a fresh
process running the engine until the batch is terminal. The same result files are then
downloaded to disk (not timed) and a raw baseline is timed on them: read lines,
``orjson.loads``, one ``executemany`` into a plain SQLite table, commit. With PostgreSQL,
the same rows are also COPYed into a plain table with the results table's unique key (the
ratio is taken against that) and written with asyncpg ``executemany`` (shown beside it).

Prints a table and writes ``bench/out/ingest-<N>.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import pstats
import queue
import re
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import make_url

from unibatch.codec import SUCCESS_COLUMNS, SUCCESS_CONSTANTS

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_ingest_child.py"
OUT = HERE / "out"
MODEL = "openai/gpt-4o-mini"
TARGET_RATIO = 0.5
TARGET_RATIO_COPY = 0.7
TARGET_RSS_MB = 200.0
PY_SPY_RATE = 250
TOPICS = ("tides", "compilers", "sourdough", "glaciers", "chess openings", "bees", "jazz")

console = Console(stderr=True)


def log(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)


# -- input ---------------------------------------------------------------------------------


def write_requests(path: Path, n: int) -> int:
    """N requests in the short line shape, streamed to disk; returns the file size."""
    with path.open("wb", buffering=1024 * 1024) as fh:
        for i in range(n):
            topic = TOPICS[i % len(TOPICS)]
            line = {
                "custom_id": f"req-{i:08d}",
                "body": {
                    "model": MODEL,
                    "messages": [
                        {"role": "system", "content": "You are a concise assistant."},
                        {"role": "user", "content": f"Request {i}: one fact about {topic}."},
                    ],
                    "max_tokens": 64,
                },
            }
            fh.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    return path.stat().st_size


# -- emulator ------------------------------------------------------------------------------


class Emulator:
    """``python -m unibatch emulate --port 0`` as a subprocess; stderr goes to a log file."""

    def __init__(self, log_path: Path, time_scale: float) -> None:
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "unibatch",
                "emulate",
                "--port",
                "0",
                "--time-scale",
                str(time_scale),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self.base_url = self._wait_for_url(timeout=30.0)

    def _wait_for_url(self, timeout: float) -> str:
        lines: queue.Queue[str] = queue.Queue()
        stdout = self.proc.stdout
        assert stdout is not None

        def pump() -> None:
            for line in stdout:
                lines.put(line)

        threading.Thread(target=pump, name="emulator-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            key, _, value = line.strip().partition("=")
            if key == "OPENAI_BASE_URL":
                return value
        self.stop()
        raise RuntimeError(f"the emulator did not start; see {self.log_path}")

    def configure(self, **knobs: float) -> None:
        """Set emulator knobs at run time (`POST <base>/_emulator/config`)."""
        httpx.post(f"{self.base_url}/_emulator/config", json=knobs, timeout=10).raise_for_status()

    def stop(self) -> None:
        if self.proc.poll() is None:
            # SIGINT: uvicorn shuts down cleanly and the emulator deletes its files.
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def download(base_url: str, file_id: str, dest: Path) -> int:
    """Stream one file from the emulator to disk; returns the number of lines."""
    lines = 0
    with (
        httpx.Client(base_url=base_url + "/", headers={"Authorization": "Bearer bench"}) as client,
        client.stream("GET", f"files/{file_id}/content", timeout=600) as response,
        dest.open("wb") as fh,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes(1024 * 1024):
            fh.write(chunk)
            lines += chunk.count(b"\n")
    return lines


# -- databases -----------------------------------------------------------------------------


class Database:
    """Where the engine stores the batch: a fresh SQLite file, or a fresh PostgreSQL database
    created on the server named by the URL (and dropped at the end)."""

    def __init__(self, spec: str, tmp: Path) -> None:
        self.kind = "sqlite" if spec == "sqlite" else "postgres"
        self._admin_url: str | None = None
        self._name: str | None = None
        if self.kind == "sqlite":
            self.url = f"sqlite:///{tmp / 'unibatch.db'}"
            return
        parsed = make_url(spec)
        if parsed.get_backend_name() != "postgresql":
            raise SystemExit(f"--database must be 'sqlite' or a postgresql:// URL, not {spec!r}")
        self._admin_url = plain_pg_url(spec)
        self._name = f"unibatch_bench_{secrets.token_hex(4)}"
        asyncio.run(pg_admin(self._admin_url, f'CREATE DATABASE "{self._name}"'))
        self.url = parsed.set(database=self._name).render_as_string(hide_password=False)

    @property
    def plain_url(self) -> str:
        return plain_pg_url(self.url)

    def drop(self) -> None:
        if self._admin_url and self._name:
            sql = f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'
            asyncio.run(pg_admin(self._admin_url, sql))


def plain_pg_url(url: str) -> str:
    """The URL asyncpg understands (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def pg_admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def baseline_rows(files: list[Path]) -> Iterator[tuple[str, bytes]]:
    """(custom_id, response body re-serialised) per result line, file by file."""
    for path in files:
        with path.open("rb") as fh:
            for line in fh:
                row = orjson.loads(line)
                response = row.get("response")
                body = response.get("body") if response else row.get("error")
                yield row["custom_id"], orjson.dumps(body)


def baseline_sqlite(files: list[Path], db_path: Path) -> dict[str, Any]:
    """The raw floor: lines -> orjson.loads -> ONE executemany into a plain table -> commit.
    Same pragmas as the engine's SQLite store (16 KB pages, WAL, synchronous=NORMAL)."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA page_size=16384")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE results (custom_id TEXT, body BLOB)")
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        cursor = conn.executemany("INSERT INTO results VALUES (?, ?)", baseline_rows(files))
        conn.execute("COMMIT")
        wall = time.perf_counter() - t0
        rows = cursor.rowcount
    finally:
        conn.close()
    return {"backend": "sqlite", "rows": rows, "wall_seconds": round(wall, 4)}


async def baseline_postgres(files: list[Path], url: str) -> dict[str, Any]:
    """The same floor on PostgreSQL: asyncpg executemany in one transaction."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE baseline_results (custom_id text, body bytea)")
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO baseline_results VALUES ($1, $2)", baseline_rows(files)
            )
        wall = time.perf_counter() - t0
        rows = await conn.fetchval("SELECT count(*) FROM baseline_results")
    finally:
        await conn.close()
    return {"backend": "postgres", "rows": int(rows), "wall_seconds": round(wall, 4)}


async def baseline_postgres_copy(files: list[Path], url: str, batch_id: str) -> dict[str, Any]:
    """The PostgreSQL target's floor: the same rows COPYed (asyncpg's binary COPY, streamed
    from the parsed lines) into a plain table with the results table's unique key
    `(batch_id, custom_id)`, in one transaction."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE baseline_copy (batch_id varchar(64), custom_id varchar(512), "
            "body bytea, PRIMARY KEY (batch_id, custom_id))"
        )
        t0 = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "baseline_copy",
                records=((batch_id, cid, body) for cid, body in baseline_rows(files)),
                columns=["batch_id", "custom_id", "body"],
            )
        wall = time.perf_counter() - t0
        rows = await conn.fetchval("SELECT count(*) FROM baseline_copy")
    finally:
        await conn.close()
    return {"backend": "postgres-copy", "rows": int(rows), "wall_seconds": round(wall, 4)}


async def baseline_postgres_store_copy(
    files: list[Path], url: str, batch_id: str, chunk: int
) -> dict[str, Any]:
    """Not the target's baseline: what the store's own writes cost with nothing around
    them. The same rows, with the columns a stored success has (17: ids, status, usage,
    cost, body, time), COPYed into a copy of the results table (same key) in chunks of
    `chunk` rows, one transaction each with `synchronous_commit` off, as
    `Store.insert_results` writes them; no download, decoding, pricing or finalize. The
    gap between this and the COPY above is the schema's; the gap between ours and this
    is the pipeline's."""
    import asyncpg

    # The short success form the store writes (`unibatch.codec`), with its constants
    # that are not NULL appended, as `Store.insert_results` COPYs it.
    tail = {k: v for k, v in SUCCESS_CONSTANTS.items() if v is not None}
    columns = [*SUCCESS_COLUMNS, *tail]

    def store_rows() -> Iterator[tuple[Any, ...]]:
        for n, (custom_id, body) in enumerate(baseline_rows(files)):
            values = {
                "batch_id": batch_id,
                "custom_id": custom_id,
                "job_id": "ubj_baseline",
                "status_code": 200,
                "row_id": f"batch_req_{n:024d}",
                "request_id": f"req_{n:030d}",
                "input_tokens": 20,
                "output_tokens": 300,
                "cost_input": 20 * 7.5e-8,
                "cost_output": 300 * 3e-7,
                "body": b"j" + body,
                "created_at": time.time(),
            }
            yield (*(values.get(name, 0) for name in SUCCESS_COLUMNS), *tail.values())

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "CREATE TABLE baseline_store_copy (LIKE results INCLUDING DEFAULTS "
            "INCLUDING CONSTRAINTS INCLUDING INDEXES)"
        )
        rows = store_rows()
        t0 = time.perf_counter()
        while part := list(itertools.islice(rows, chunk)):
            async with conn.transaction():
                await conn.execute("SET LOCAL synchronous_commit TO OFF")
                await conn.copy_records_to_table(
                    "baseline_store_copy", records=part, columns=columns
                )
        wall = time.perf_counter() - t0
        count = await conn.fetchval("SELECT count(*) FROM baseline_store_copy")
    finally:
        await conn.close()
    return {"backend": "postgres-store-copy", "rows": int(count), "wall_seconds": round(wall, 4)}


# -- one run -------------------------------------------------------------------------------


def run_child(args: list[str], profiler: list[str] | None = None) -> dict[str, Any]:
    cmd = [sys.executable, str(CHILD), *args]
    if profiler:
        cmd = [*profiler, "--", *cmd]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed with exit code {proc.returncode}")
    # The figures are the last JSON line (py-spy, when used, prints its own lines too).
    last = [line for line in proc.stdout.splitlines() if line.startswith("{")][-1]
    figures: dict[str, Any] = orjson.loads(last)
    return figures


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time; every run's wall time is kept in it."""
    ordered = sorted(runs, key=lambda r: float(r["wall_seconds"]))
    chosen = dict(ordered[len(ordered) // 2])
    chosen["all_wall_seconds"] = [r["wall_seconds"] for r in runs]
    return chosen


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else 0.0


def run_size(n: int, opts: argparse.Namespace) -> dict[str, Any]:
    log(f"[bold]== {n:,} requests ==[/]")
    keep = opts.keep
    tmp_ctx = (
        contextlib.nullcontext(tempfile.mkdtemp(prefix="unibatch-bench-"))
        if keep
        else tempfile.TemporaryDirectory(prefix="unibatch-bench-")
    )
    OUT.mkdir(parents=True, exist_ok=True)
    with tmp_ctx as tmp_name, contextlib.ExitStack() as cleanup:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        size = write_requests(tmp / "requests.jsonl", n)
        log(f"wrote {n:,} requests ({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f}s")
        database = Database(opts.database, tmp)
        cleanup.callback(database.drop)
        emulator = Emulator(tmp / "emulator.log", opts.time_scale)
        cleanup.callback(emulator.stop)
        log(f"emulator at {emulator.base_url}")

        common = ["--database-url", database.url, "--base-url", emulator.base_url]
        prepared = run_child(["prepare", *common, "--requests-file", str(tmp / "requests.jsonl")])
        ingest_args = ["ingest", *common, "--batch-id", prepared["batch_id"]]
        ingest_args += ["--limit", str(opts.limit)]
        profile_path: Path | None = None
        profiler: list[str] | None = None
        if opts.profile == "cprofile":
            profile_path = OUT / f"ingest-{n}.prof"
            ingest_args += ["--profile", str(profile_path)]
        elif opts.profile == "py-spy":
            profile_path = OUT / f"ingest-{n}.py-spy.txt"
            profiler = [py_spy(), "record", "--format", "raw", "--rate", str(PY_SPY_RATE)]
            profiler += ["--output", str(profile_path)]
        # Repeats ingest the same prepared state again: the SQLite file is copied back.
        prepared_db = tmp / "prepared.db"
        if opts.repeat > 1:
            shutil.copyfile(tmp / "unibatch.db", prepared_db)
        runs: list[dict[str, Any]] = []
        for attempt in range(opts.repeat):
            if attempt:
                for suffix in ("-wal", "-shm"):
                    (tmp / f"unibatch.db{suffix}").unlink(missing_ok=True)
                shutil.copyfile(prepared_db, tmp / "unibatch.db")
            runs.append(run_child(ingest_args, profiler if not attempt else None))
        ours = median_run(runs)

        # Baseline: the same result files, downloaded first (the download is not timed
        # against the baseline; its rate is reported to show what the emulator serves).
        files: list[Path] = []
        t0 = time.perf_counter()
        served = 0
        for job in ours["files"]:
            for key in ("output_file_id", "error_file_id"):
                if job[key]:
                    dest = tmp / f"{job['job_id']}-{key}.jsonl"
                    served += download(emulator.base_url, job[key], dest)
                    files.append(dest)
        download_s = time.perf_counter() - t0
        log(f"downloaded {served:,} result rows in {download_s:.1f}s (emulator serve rate)")
        base = median_run(
            [baseline_sqlite(files, tmp / f"baseline-{i}.db") for i in range(opts.repeat)]
        )
        log(f"baseline (sqlite): {base['rows']:,} rows in {base['wall_seconds']:.2f}s")
        base_pg: dict[str, Any] | None = None
        base_copy: dict[str, Any] | None = None
        store_copy: dict[str, Any] | None = None
        if database.kind == "postgres":
            base_pg = asyncio.run(baseline_postgres(files, database.plain_url))
            log(f"baseline (postgres): {base_pg['rows']:,} rows in {base_pg['wall_seconds']:.2f}s")
            copied = baseline_postgres_copy(files, database.plain_url, prepared["batch_id"])
            base_copy = asyncio.run(copied)
            log(f"baseline (COPY): {base_copy['rows']:,} rows in {base_copy['wall_seconds']:.2f}s")
            shaped = baseline_postgres_store_copy(
                files, database.plain_url, prepared["batch_id"], ours["ingest_chunk"]
            )
            store_copy = asyncio.run(shaped)
            log(
                f"store-shaped COPY: {store_copy['rows']:,} rows in "
                f"{store_copy['wall_seconds']:.2f}s (the store's columns and chunks, no pipeline)"
            )
        if keep:
            log(f"kept {tmp}")

    ours_rate = rate(ours["rows_ingested"], ours["wall_seconds"])
    # SQLite: against executemany (target 0.5); PostgreSQL: against COPY (target 0.7),
    # with the asyncpg executemany rate beside it.
    same_backend = base_copy if base_copy is not None else base
    target_ratio = TARGET_RATIO if base_copy is None else TARGET_RATIO_COPY
    base_rate = rate(same_backend["rows"], same_backend["wall_seconds"])
    ratio = ours_rate / base_rate if base_rate else 0.0
    executemany_rate = rate(base_pg["rows"], base_pg["wall_seconds"]) if base_pg else None
    figures: dict[str, Any] = {
        "requests": n,
        "database": database.kind,
        "ours_rps": round(ours_rate, 1),
        # Rows per CPU second of the ingest process: steadier than wall time on a busy box.
        "ours_rows_per_cpu_second": round(rate(ours["rows_ingested"], ours["cpu_seconds"]), 1),
        "baseline_rps": round(base_rate, 1),
        "baseline_kind": "copy" if base_copy is not None else "executemany",
        "executemany_rps": round(executemany_rate, 1) if executemany_rate else None,
        "store_copy_rps": (
            round(rate(store_copy["rows"], store_copy["wall_seconds"]), 1) if store_copy else None
        ),
        "ratio": round(ratio, 3),
        "peak_rss_mb": ours["peak_rss_total_mb"],
        "targets": {
            "ratio_min": target_ratio,
            "ratio_pass": ratio >= target_ratio,
            "peak_rss_max_mb": TARGET_RSS_MB,
            "peak_rss_pass": ours["peak_rss_total_mb"] < TARGET_RSS_MB,
        },
        "emulator_serve_rps": round(rate(served, download_s), 1),
        "ours": ours,
        "baseline": {"sqlite": base, "postgres": base_pg, "postgres_copy": base_copy},
        "prepare": prepared,
        "request_file_bytes": size,
        "time_scale": opts.time_scale,
        "profile": str(profile_path) if profile_path else None,
        "python": sys.version.split()[0],
        "sqlite_version": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if ours["rows_ingested"] != n or ours["counts"]["succeeded"] != n:
        log(f"[red]warning: expected {n} succeeded rows, got {ours['counts']}[/]")
    suffix = "" if database.kind == "sqlite" else f"-{database.kind}"
    out_path = OUT / f"ingest-{n}{suffix}.json"
    out_path.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    log(f"wrote {out_path}")
    if opts.profile == "cprofile" and profile_path is not None:
        stats = pstats.Stats(str(profile_path), stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
    if opts.profile == "py-spy" and profile_path is not None:
        summarize_py_spy(profile_path, PY_SPY_RATE)
    return figures


def py_spy() -> str:
    """py-spy from this interpreter's environment, else from PATH."""
    local = Path(sys.executable).parent / "py-spy"
    found = str(local) if local.exists() else shutil.which("py-spy")
    if not found:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def summarize_py_spy(path: Path, rate_hz: int, top: int = 20) -> None:
    """Where the ingest child spent its time, from py-spy's collapsed stacks
    ("frame;frame;... count" per line, frames as "function (file:line)")."""
    groups: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        frames = [_LINE_NO.sub(")", frame) for frame in stack.split(";")]
        if any("RssSampler" in frame for frame in frames):
            continue  # the bench's own sampler thread, mostly asleep
        if frames[0].startswith("Thread._bootstrap"):
            group = "driver thread (aiosqlite: SQLite itself)"
        elif any("run_until_terminal" in f for f in frames) or "sqlalchemy" in frames[0]:
            group = "event loop during the timed run"
        else:
            group = "setup (imports, engine open, migrations)"
            groups[group] += samples
            continue
        groups[group] += samples
        self_time[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    timed = sum(n for g, n in groups.items() if not g.startswith("setup"))
    if not timed:
        return
    out = sys.stderr
    print(f"py-spy ({path}): CPU seconds by thread", file=out)
    for group, samples in groups.most_common():
        print(f"  {samples / rate_hz:7.2f}s  {group}", file=out)
    print("self time by innermost function (share of the timed run's samples):", file=out)
    for frame, samples in self_time.most_common(top):
        print(f"  {100 * samples / timed:5.1f}%  {frame}", file=out)
    print("inclusive time of engine-level functions:", file=out)
    for frame, samples in inclusive.most_common():
        if frame.split(" (")[0] in _KEY_FRAMES:
            print(f"  {100 * samples / timed:5.1f}%  {frame}", file=out)


_LINE_NO = re.compile(r":\d+\)$")
_KEY_FRAMES = frozenset(
    {
        "_ingest",
        "OpenAIProvider.results",
        "OpenAIProvider._lines",
        "parse_row",
        "usage_of",
        "_result_row",
        "pack_bytes",
        "Pricer.cost",
        "Store.insert_results",
        "Store.finalize",
        "Store.progress",
        "DefaultExecutionContext._init_compiled",
        "_connection_worker_thread",
    }
)


def mark(ok: bool) -> str:
    return "[green]pass[/]" if ok else "[red]FAIL[/]"


def table(results: list[dict[str, Any]]) -> Table:
    t = Table(title="unibatch ingest vs raw baseline")
    for col in (
        "requests",
        "db",
        "ours (req/s)",
        "baseline (req/s)",
        "executemany (req/s)",
        "store-shaped COPY (req/s)",
        "ratio",
        "target",
        "peak RSS (MB)",
        f"RSS < {TARGET_RSS_MB:.0f} MB",
        "emulator serve (req/s)",
    ):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(
            f"{r['requests']:,}",
            r["database"],
            f"{r['ours_rps']:,.0f}",
            f"{r['baseline_rps']:,.0f} ({r['baseline_kind']})",
            f"{r['executemany_rps']:,.0f}" if r["executemany_rps"] else "-",
            f"{r['store_copy_rps']:,.0f}" if r.get("store_copy_rps") else "-",
            f"{r['ratio']:.2f}",
            f">= {r['targets']['ratio_min']}: {mark(r['targets']['ratio_pass'])}",
            f"{r['peak_rss_mb']:.0f}",
            mark(r["targets"]["peak_rss_pass"]),
            f"{r['emulator_serve_rps']:,.0f}",
        )
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description="Time unibatch's result ingest.")
    parser.add_argument(
        "--requests",
        type=int,
        action="append",
        help="batch size; repeat for several (default 100000)",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="'sqlite' (a fresh file, default) or a postgresql:// URL; a fresh database is "
        "created on that server and dropped afterwards",
    )
    parser.add_argument("--time-scale", type=float, default=0.01, help="emulator time scale")
    parser.add_argument("--limit", type=int, default=10, help="run_once limit while ingesting")
    parser.add_argument(
        "--profile",
        choices=["cprofile", "py-spy"],
        help="profile the ingest child (timings are then inflated); output in bench/out/",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time the ingest and the baseline this many times and report the median runs "
        "(SQLite only)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = parser.parse_args()
    if opts.repeat < 1 or (opts.repeat > 1 and opts.database != "sqlite"):
        parser.error("--repeat takes a count >= 1, and more than 1 only with SQLite")
    sizes = opts.requests or [100_000]
    results = [run_size(n, opts) for n in sizes]
    # Not a terminal (a pipe, a log file): rich would squeeze the table into 80 columns.
    Console(width=None if sys.stdout.isatty() else 150).print(table(results))
    if opts.profile:
        print("note: profiled run; rates are lower than unprofiled ones", file=sys.stderr)


if __name__ == "__main__":
    main()
