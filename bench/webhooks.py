"""Webhook delivery throughput of one worker against a bare client posting the same bodies.

    python bench/webhooks.py                      # 1,000 events, SQLite
    python bench/webhooks.py --events 3000 --repeat 3
    python bench/webhooks.py --database postgresql://postgres@127.0.0.1/bench_hooks

The receiver is a threaded stdlib HTTP server in a subprocess that answers 200 to every
POST (its CPU is not ours). Both sides send the same number at once (the worker's
`worker_concurrency`):

- baseline: an `httpx.AsyncClient` posting each event's stored body with its headers
  signed, nothing read or written in the database;
- worker: `Engine.run_worker` until every delivery is `delivered`: the claims (leases),
  the signing, the post and the outcome's commit, per delivery.

Printed: wall time, events/s, this process's CPU seconds, and the worker's events/s as a
share of the baseline's (the median of `--repeat` runs each, interleaved).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.engine.webhooks import headers
from unibatch.store.tables import webhook_events

RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as receivers behind a web server
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _queue(engine: Engine, url: str, events: int) -> str:
    endpoint = await engine.store.add_endpoint(url, key_id=None, now=time.time())
    for _ in range(events):
        await engine.store.send_test_event(endpoint["id"], now=time.time())
    return str(endpoint["id"])


async def _worker(engine: Engine, endpoint_id: str, events: int) -> float:
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run_worker(stop, idle=0.01))
    start = time.perf_counter()
    while True:
        counts = await engine.store.delivery_counts()
        if sum(c["deliveries"] for c in counts if c["state"] == "delivered") >= events:
            break
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - start
    stop.set()
    await task
    return wall


async def _baseline(url: str, bodies: list[tuple[str, bytes]], secret: str, limit: int) -> float:
    gate = asyncio.Semaphore(limit)
    async with httpx.AsyncClient() as client:

        async def send(event_id: str, body: bytes) -> None:
            async with gate:
                sent = headers(secret, event_id, body, now=time.time())
                (await client.post(url, content=body, headers=sent)).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(send(i, b) for i, b in bodies))
        return time.perf_counter() - start


async def _run(database: str | None, url: str, events: int) -> tuple[float, float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = database or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = await Engine.open(settings=Settings(database_url=db))
        try:
            endpoint_id = await _queue(engine, url, events)
            rows = await engine.store.list_deliveries(limit=events)
            [hook] = await engine.store.list_endpoints(None)
            async with engine.store.engine.connect() as conn:
                bodies = [
                    (r[0], r[1])
                    for r in await conn.execute(
                        sa.select(webhook_events.c.id, webhook_events.c.payload)
                    )
                ]
            assert len(rows) == len(bodies) == events
            limit = engine.settings.worker_concurrency
            cpu = _cpu()
            base = await _baseline(url, bodies, hook["secret"], limit)
            base_cpu = _cpu() - cpu
            cpu = _cpu()
            wall = await _worker(engine, endpoint_id, events)
            worker_cpu = _cpu() - cpu
        finally:
            await engine.aclose()
    return base, base_cpu, wall, worker_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--database", help="PostgreSQL URL (emptied first); default SQLite")
    args = parser.parse_args()
    port = _port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    url = f"http://127.0.0.1:{port}/hooks"
    try:
        for _ in range(200):
            try:
                httpx.post(url, content=b"{}", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        runs = []
        for _ in range(args.repeat):
            if args.database:
                subprocess.run(
                    [
                        "psql",
                        args.database,
                        "-qc",
                        "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
                    ],
                    check=True,
                )
            runs.append(asyncio.run(_run(args.database, url, args.events)))
    finally:
        receiver.terminate()
        receiver.wait()
    n = args.events
    base = statistics.median(r[0] for r in runs)
    wall = statistics.median(r[2] for r in runs)
    print(f"events: {n}, repeat: {args.repeat}")
    base_cpu = statistics.median(r[1] for r in runs)
    worker_cpu = statistics.median(r[3] for r in runs)
    print(f"baseline: {base:.2f} s, {n / base:.0f} events/s, cpu {base_cpu:.2f} s")
    print(f"worker:   {wall:.2f} s, {n / wall:.0f} events/s, cpu {worker_cpu:.2f} s")
    print(f"worker / baseline: {base / wall:.2f}")


if __name__ == "__main__":
    main()
