"""Many batches in flight: poll lateness and steps per second of workers, and the API's
latency while a large ingest runs in `unibatch serve`.

    python bench/inflight.py                                  # 10,000 jobs, SQLite, one worker
    python bench/inflight.py --jobs 2000 --interval 20        # a quicker run
    python bench/inflight.py --mode sweep --database postgresql://postgres@127.0.0.1/postgres
    python bench/inflight.py --mode sweep --workers 1 --workers 4 --jobs 3000 --database ...
    python bench/inflight.py --mode health --rows 200000      # /health during an ingest

Modes (see bench/README.md):

* ``schedule``: N provider jobs are in flight at the emulator, which answers each call after
  ``--slow`` seconds (0.2). Their next polls are spread evenly over ``--interval`` seconds
  and every job is polled again ``--interval`` seconds after its last poll. One worker runs
  for ``--duration`` seconds; printed: how late each poll started against its scheduled
  ``next_run_at`` (p50, p99, max) and polls per second.
* ``sweep`` (PostgreSQL): every job is due at once; one worker, then four (``--workers``),
  poll each job once. Printed: the sweep's wall time, steps per second, lateness p50/p99,
  that each job was polled once (in the store and in the emulator's calls per batch), and
  the CPU time of the workers, the emulator and PostgreSQL.
* ``health``: a batch of ``--rows`` requests is prepared up to its ingest (untimed), then
  ``unibatch serve`` (with its in-process worker) ingests it while this script reads
  ``/health`` in a loop. Printed: its latency p50/p99/max during the ingest and when idle.

Setting up N jobs is not timed: one batch with a different model per line is planned
into N jobs, and the submit is run by a worker with the emulator answering at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import sqlalchemy as sa
from ingest import Emulator
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve()
KEY = "bench"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# -- the emulator and databases ------------------------------------------------------------


class Database:
    """A fresh SQLite file, or a fresh PostgreSQL database (dropped at the end)."""

    def __init__(self, spec: str, tmp: Path, name: str) -> None:
        self._admin: str | None = None
        if spec == "sqlite":
            self.url = f"sqlite:///{tmp / f'{name}.db'}"
            return
        parsed = make_url(spec)
        self._admin = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self._name = f"unibatch_bench_{name}_{secrets.token_hex(3)}"
        asyncio.run(_pg(self._admin, f'CREATE DATABASE "{self._name}"'))
        self.url = parsed.set(database=self._name).render_as_string(hide_password=False)

    def drop(self) -> None:
        if self._admin is not None:
            asyncio.run(_pg(self._admin, f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)'))


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def env_for(emulator: Emulator, database_url: str, **settings: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=emulator.base_url)
    env["UNIBATCH_DATABASE_URL"] = database_url
    env.update({f"UNIBATCH_{k.upper()}": v for k, v in settings.items()})
    return env


# -- setup: N jobs in flight (not timed) ---------------------------------------------------


def job_lines(n: int) -> Iterator[dict[str, Any]]:
    """One request per job: a different model name per line makes each line its own job."""
    for i in range(n):
        yield {
            "custom_id": f"r{i}",
            "body": {
                "model": f"openai/gpt-4o-mini-j{i:06d}",
                "messages": [{"role": "user", "content": f"Fact {i}?"}],
            },
        }


async def put_in_flight(database_url: str, emulator: Emulator, n: int) -> float:
    """Import and submit N one-request jobs; the emulator keeps them in progress. Returns
    the submit rate (jobs/s, for information)."""
    from unibatch.config import Settings
    from unibatch.engine import Engine
    from unibatch.providers.registry import ProviderSet

    emulator.configure(slow_seconds=0.0, in_progress_seconds=10_000_000.0)
    settings = Settings(database_url=database_url, poll_schedule=(10_000_000.0,))
    providers = ProviderSet({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emulator.base_url})
    engine = await Engine.open(settings=settings, providers=providers)
    try:
        start = time.monotonic()
        await engine.create_batch(list(job_lines(n)))
        log(f"imported {n} jobs in {time.monotonic() - start:.1f}s; submitting")
        stop = asyncio.Event()
        worker = asyncio.create_task(engine.run_worker(stop))
        start = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            running = await _count(engine, "phase = 'running'")
            if running >= n:
                break
            # A submit that met a transient error is retried after the poll schedule's
            # first entry, which is huge here (no polls while setting up): retry it now.
            async with engine.store.engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "UPDATE jobs SET next_run_at = :now WHERE phase <> 'running' "
                        "AND next_run_at > :later AND lease_owner IS NULL"
                    ),
                    {"now": time.time(), "later": time.time() + 60},
                )
            if worker.done():
                worker.result()
        rate = n / (time.monotonic() - start)
        stop.set()
        await worker
        log(f"{n} jobs in flight (submitted at {rate:.0f} jobs/s)")
        return rate
    finally:
        await engine.aclose()


async def _count(engine: Any, where: str) -> int:
    async with engine.store.engine.connect() as conn:
        return int(
            (await conn.execute(sa.text(f"SELECT count(*) FROM jobs WHERE {where}"))).scalar()
        )


async def schedule_polls(database_url: str, start: float, spread: float) -> int:
    """Make every job due once between `start` and `start + spread`, evenly."""
    from unibatch.store import open_store

    store = await open_store(database_url)
    try:
        async with store.engine.begin() as conn:
            ids = [r[0] for r in await conn.execute(sa.text("SELECT id FROM jobs ORDER BY id"))]
            n = max(len(ids), 1)
            await conn.execute(
                sa.text(
                    "UPDATE jobs SET next_run_at = :at, poll_count = 0, "
                    "lease_owner = NULL, lease_until = NULL WHERE id = :id"
                ),
                [{"id": job_id, "at": start + spread * i / n} for i, job_id in enumerate(ids)],
            )
        return len(ids)
    finally:
        await store.aclose()


async def polled_jobs(database_url: str) -> tuple[int, int]:
    """(jobs polled at least once, polls recorded in all) since `schedule_polls`. One
    plain connection: this runs every second of a sweep, beside the workers it measures."""
    import asyncpg

    url = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE poll_count > 0), coalesce(sum(poll_count), 0) FROM jobs"
        )
    finally:
        await conn.close()
    return int(row[0]), int(row[1])


# -- the worker (a child process) ----------------------------------------------------------


def worker_main() -> None:
    """A worker that records, per poll, how late it started and when it ended; prints
    them as JSON on SIGTERM (after its graceful stop)."""
    from unibatch.config import Settings
    from unibatch.engine import Engine
    from unibatch.providers.registry import ProviderSet
    from unibatch.store import open_store
    from unibatch.store.ops import Store
    from unibatch.store.records import JobPhase

    class TimedStore(Store):
        late: list[float] = []
        polled: list[float] = []

        async def claim_jobs(self, owner: str, now: float, **kw: Any) -> Any:
            claimed = await super().claim_jobs(owner, now, **kw)
            started = time.time()
            for job in claimed:
                if job.phase is JobPhase.RUNNING and job.next_run_at is not None:
                    self.late.append(started - job.next_run_at)
            return claimed

        async def job_polled(self, *args: Any, **kw: Any) -> bool:
            done = await super().job_polled(*args, **kw)
            if done:
                self.polled.append(time.time())
            return done

    async def run() -> None:
        settings = Settings()
        store = TimedStore((await open_store(settings.database_url)).engine)
        engine = Engine(store, settings, ProviderSet(timeout=settings.http_timeout))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        cpu = time.process_time()
        print("ready", flush=True)
        await engine.run_worker(stop)
        await engine.aclose()
        out = {"late": store.late, "polled": store.polled, "cpu": time.process_time() - cpu}
        print(json.dumps(out), flush=True)

    profile = os.environ.get("INFLIGHT_PROFILE")
    if not profile:
        asyncio.run(run())
        return
    import cProfile

    cProfile.runctx("asyncio.run(run())", globals(), locals(), f"{profile}.{os.getpid()}")


def start_workers(count: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE), "worker"], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(count)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker did not start")
    return procs


def stop_workers(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    outs = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=120)
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    return outs


def merge(outs: list[dict[str, Any]]) -> dict[str, Any]:
    late = [x for o in outs for x in o["late"]]
    polled = sorted(x for o in outs for x in o["polled"])
    return {"late": late, "polled": polled, "cpu": sum(o["cpu"] for o in outs)}


# -- modes ---------------------------------------------------------------------------------


def run_schedule(
    opts: argparse.Namespace, emulator: Emulator, db: Database, workers: int
) -> dict[str, Any]:
    emulator.configure(slow_seconds=opts.slow)
    env = env_for(
        emulator,
        db.url,
        poll_schedule=str(opts.interval),
        worker_concurrency=str(opts.concurrency),
    )
    procs = start_workers(workers, env)
    start = time.time() + 1.0
    n = asyncio.run(schedule_polls(db.url, start, opts.interval))
    log(f"schedule: {n} jobs due over {opts.interval:.0f}s, running {opts.duration:.0f}s")
    time.sleep(max(0.0, start + opts.duration - time.time()))
    got = merge(stop_workers(procs))
    late = got["late"]
    result = {
        "mode": "schedule",
        "jobs": n,
        "workers": workers,
        "concurrency": opts.concurrency,
        "interval": opts.interval,
        "duration": opts.duration,
        "slow": opts.slow,
        "polls": len(got["polled"]),
        "polls_per_s": len(got["polled"]) / opts.duration,
        "needed_per_s": n / opts.interval,
        "late_p50": pct(late, 50),
        "late_p99": pct(late, 99),
        "late_max": max(late, default=float("nan")),
        "within_5s": sum(x <= 5.0 for x in late) / max(len(late), 1),
        "worker_cpu_s": got["cpu"],
    }
    print(
        f"schedule: {n} jobs, {workers} worker(s) x {opts.concurrency}, polls every "
        f"{opts.interval:.0f}s (needs {result['needed_per_s']:.0f}/s), emulator {opts.slow}s: "
        f"{result['polls']} polls, {result['polls_per_s']:.0f}/s; lateness p50 "
        f"{result['late_p50']:.2f}s p99 {result['late_p99']:.2f}s max {result['late_max']:.2f}s; "
        f"{100 * result['within_5s']:.1f}% within 5s (target: all)"
    )
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, 0 if it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


async def server_stats(database_url: str) -> tuple[list[int], int, float]:
    """The PostgreSQL server processes serving the bench database now (the workers'
    pools), how many sessions it has had, and their time spent running statements (s)."""
    import asyncpg

    url = make_url(database_url)
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        stats = await conn.fetchrow(
            "SELECT sessions, active_time FROM pg_stat_database WHERE datname = $1",
            url.database,
        )
    finally:
        await conn.close()
    return [int(row["pid"]) for row in rows], int(stats[0]), float(stats[1]) / 1000


async def provider_ids(database_url: str) -> list[str]:
    from unibatch.store import open_store

    store = await open_store(database_url, migrate=False)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(sa.text("SELECT provider_batch_id FROM jobs"))
            return [row[0] for row in rows]
    finally:
        await store.aclose()


def poll_calls(emulator: Emulator) -> Counter[str]:
    """Polls the emulator has answered so far, per provider batch id."""
    calls = httpx.get(f"{emulator.base_url}/_emulator/calls", timeout=30).json()
    polled: Counter[str] = Counter()
    for key, count in calls.items():
        method, _, path = key.partition(" ")
        head, _, batch = path.rpartition("/batches/")
        if method == "GET" and head and batch and "/" not in batch:
            polled[batch] += count
    return polled


def run_sweep(opts: argparse.Namespace, emulator: Emulator, db: Database) -> list[dict[str, Any]]:
    emulator.configure(slow_seconds=opts.slow)
    # A poll that met a transient error (the emulator has 256 connections to serve at
    # once with four workers) is retried after the first entry; a poll that succeeded
    # waits the second, which is beyond the end of the sweep.
    env = env_for(
        emulator, db.url, poll_schedule="1,10000000", worker_concurrency=str(opts.concurrency)
    )
    ids = asyncio.run(provider_ids(db.url))
    results = []
    for workers in opts.workers or [1, 4]:
        procs = start_workers(workers, env)
        _, sessions, active = asyncio.run(server_stats(db.url))
        calls_before = poll_calls(emulator)
        emulator_cpu = cpu_seconds(emulator.proc.pid)
        start = time.time() + 1.0
        n = asyncio.run(schedule_polls(db.url, start, 0.0))
        while True:
            # The wall time is taken from the last poll written, not from this check.
            time.sleep(1.0)
            done, polls = asyncio.run(polled_jobs(db.url))
            if done >= n:
                break
        backends, sessions_after, active_after = asyncio.run(server_stats(db.url))
        pg_cpu = sum(cpu_seconds(pid) for pid in backends)
        emulator_cpu = cpu_seconds(emulator.proc.pid) - emulator_cpu
        got = merge(stop_workers(procs))
        calls = poll_calls(emulator) - calls_before
        per_job = Counter(calls.get(i, 0) for i in ids)
        wall = got["polled"][-1] - start
        late = got["late"]
        result = {
            "mode": "sweep",
            "jobs": n,
            "workers": workers,
            "concurrency": opts.concurrency,
            "slow": opts.slow,
            "wall_s": wall,
            "steps_per_s": n / wall,
            "late_p50": pct(late, 50),
            "late_p99": pct(late, 99),
            "polls": len(got["polled"]),
            "polls_recorded": polls,
            # Provider calls per job at the emulator: {calls: jobs}; a poll retried after
            # a dropped connection shows as 2.
            "emulator_polls_per_job": dict(sorted(per_job.items())),
            "each_once": len(got["polled"]) == n == polls and per_job == Counter({1: n}),
            "worker_cpu_s": got["cpu"],
            "emulator_cpu_s": emulator_cpu,
            "postgres_cpu_s": pg_cpu,
            # Connections opened during the sweep, and the time they spent in statements.
            "postgres_sessions": sessions_after - sessions,
            "postgres_active_s": active_after - active,
            "load_avg": os.getloadavg(),
        }
        print(
            f"sweep: {n} jobs, {workers} worker(s) x {opts.concurrency}, emulator "
            f"{opts.slow}s: {wall:.1f}s, {result['steps_per_s']:.0f} steps/s; lateness p50 "
            f"{result['late_p50']:.2f}s p99 {result['late_p99']:.2f}s; each job polled once: "
            f"{result['each_once']} (emulator polls per job {result['emulator_polls_per_job']}); "
            f"CPU s: workers {got['cpu']:.1f}, emulator {emulator_cpu:.1f}, PostgreSQL "
            f"{pg_cpu:.1f} (backends alive at the end; {result['postgres_sessions']} "
            f"connections opened, {result['postgres_active_s']:.1f}s in statements); load "
            f"{result['load_avg'][0]:.1f}"
        )
        results.append(result)
    return results


async def prepare_ingest(database_url: str, emulator: Emulator, rows: int) -> str:
    """A batch of `rows` requests whose jobs all wait to be ingested (not timed)."""
    from functools import partial

    from unibatch.config import Settings
    from unibatch.engine import Engine
    from unibatch.engine.jobs import run_job_step
    from unibatch.providers.registry import ProviderSet

    emulator.configure(slow_seconds=0.0, in_progress_seconds=1.0)
    settings = Settings(database_url=database_url, poll_schedule=(0.2,), lease_seconds=3600.0)
    providers = ProviderSet({"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emulator.base_url})
    engine = await Engine.open(settings=settings, providers=providers)
    ctx = engine.ctx
    lines = (
        {
            "custom_id": f"q{i}",
            "body": {
                "model": "openai/gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Request {i}: one fact."}],
                "max_tokens": 64,
            },
        }
        for i in range(rows)
    )
    try:
        batch_id = await engine.create_batch(lines)
        log(f"health: imported {rows} requests; submitting and polling")
        while True:
            jobs = await engine.store.jobs_of(batch_id)
            if all(job.phase == "ingesting" for job in jobs):
                return batch_id
            claimed = await ctx.store.claim_jobs(ctx.owner, ctx.clock(), lease=3600.0)
            for job in claimed:
                if job.phase == "ingesting":
                    await ctx.store.release_job(job.id, ctx.owner)
                else:
                    await partial(run_job_step, ctx, job)()
            await asyncio.sleep(0.2)
    finally:
        await engine.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_health(url: str, seconds: float | None, done: threading.Event | None) -> list[float]:
    """Latency of GET /health, one request at a time (10 ms apart)."""
    times: list[float] = []
    deadline = None if seconds is None else time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        while not (done is not None and done.is_set()):
            if deadline is not None and time.monotonic() > deadline:
                break
            t0 = time.perf_counter()
            client.get(url).raise_for_status()
            times.append(time.perf_counter() - t0)
            time.sleep(0.01)
    return times


def run_health(opts: argparse.Namespace, emulator: Emulator, tmp: Path) -> dict[str, Any]:
    db = Database("sqlite", tmp, "health")
    batch_id = asyncio.run(prepare_ingest(db.url, emulator, opts.rows))
    port = free_port()
    env = env_for(emulator, db.url, worker_concurrency=str(opts.concurrency))
    serve_log = (tmp / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "unibatch", "serve", "--port", str(port)],
        env=env,
        stdout=serve_log,
        stderr=serve_log,
    )
    url = f"http://127.0.0.1:{port}/health"
    path = make_url(db.url).database
    assert path is not None

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError as exc:
                if time.monotonic() > deadline or server.poll() is not None:
                    failed = f"unibatch serve did not start; see {tmp / 'serve.log'}"
                    raise RuntimeError(failed) from exc
                time.sleep(0.1)
        log("health: serving; the in-process worker ingests while /health is read")
        done = threading.Event()
        busy: list[float] = []
        reader = threading.Thread(target=lambda: busy.extend(read_health(url, None, done)))
        start = time.monotonic()
        reader.start()
        while True:
            time.sleep(0.2)
            with sqlite3.connect(path, timeout=30) as conn:
                row = conn.execute("SELECT status FROM batches WHERE id=?", (batch_id,)).fetchone()
            if row[0] in ("completed", "failed", "expired", "cancelled"):
                break
        ingest_s = time.monotonic() - start
        done.set()
        reader.join()
        idle = read_health(url, 3.0, None)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        serve_log.close()
    result = {
        "mode": "health",
        "rows": opts.rows,
        "ingest_s": ingest_s,
        "requests": len(busy),
        "busy_p50_ms": 1000 * pct(busy, 50),
        "busy_p99_ms": 1000 * pct(busy, 99),
        "busy_max_ms": 1000 * max(busy, default=float("nan")),
        "idle_p50_ms": 1000 * pct(idle, 50),
        "idle_p99_ms": 1000 * pct(idle, 99),
    }
    print(
        f"health: {opts.rows} rows ingested by `unibatch serve` in {ingest_s:.1f}s; /health "
        f"during it: {len(busy)} requests, p50 {result['busy_p50_ms']:.1f} ms, p99 "
        f"{result['busy_p99_ms']:.1f} ms, max {result['busy_max_ms']:.1f} ms (target p99 < "
        f"100 ms); idle: p50 {result['idle_p50_ms']:.1f} ms, p99 {result['idle_p99_ms']:.1f} ms"
    )
    return result


def main() -> None:
    if sys.argv[1:2] == ["worker"]:
        worker_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["schedule", "sweep", "health"], action="append")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in flight")
    parser.add_argument("--database", default="sqlite", help="'sqlite' or a postgresql:// URL")
    parser.add_argument(
        "--workers",
        type=int,
        action="append",
        help="worker processes; repeat for several runs (schedule: 1, sweep: 1 and 4)",
    )
    parser.add_argument("--concurrency", type=int, default=64, help="steps at once per worker")
    parser.add_argument("--slow", type=float, default=0.2, help="emulator delay per call (s)")
    parser.add_argument("--interval", type=float, default=60.0, help="schedule: poll interval")
    parser.add_argument("--duration", type=float, default=90.0, help="schedule: run time (s)")
    parser.add_argument("--rows", type=int, default=200_000, help="health: requests ingested")
    parser.add_argument("--out", type=Path, default=HERE.parent / "out" / "inflight.json")
    opts = parser.parse_args()
    modes = opts.mode or ["schedule"]
    if "sweep" in modes and opts.database == "sqlite":
        parser.error("--mode sweep needs --database postgresql://...")
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="unibatch-inflight-") as tmp_name:
        tmp = Path(tmp_name)
        emulator = Emulator(tmp / "emulator.log", time_scale=1.0)
        try:
            if "schedule" in modes or "sweep" in modes:
                db = Database(opts.database, tmp, "inflight")
                try:
                    asyncio.run(put_in_flight(db.url, emulator, opts.jobs))
                    if "schedule" in modes:
                        for workers in opts.workers or [1]:
                            results.append(run_schedule(opts, emulator, db, workers))
                    if "sweep" in modes:
                        results.extend(run_sweep(opts, emulator, db))
                finally:
                    db.drop()
            if "health" in modes:
                results.append(run_health(opts, emulator, tmp))
        finally:
            emulator.stop()
    opts.out.parent.mkdir(exist_ok=True)
    opts.out.write_text(json.dumps(results, indent=2))
    log(f"figures in {opts.out}")


if __name__ == "__main__":
    main()
