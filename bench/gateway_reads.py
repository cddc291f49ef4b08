"""Gateway reads: requests per second of `GET /v1/batches/{id}` against a bare FastAPI
endpoint returning the same JSON, in the same run.

    python bench/gateway_reads.py                          # 16 connections, 3000 requests
    python bench/gateway_reads.py --requests 10000 --rounds 5
    python bench/gateway_reads.py --log-level warning      # both servers without access logs

Untimed setup: `unibatch serve --no-worker` on a fresh SQLite file in a temporary
directory, a virtual key made with the master key, and one small batch created with it
through the JSON API (no worker runs, so the batch stays `validating`/`in_progress` and
its body does not change between reads). Its `GET /v1/batches/{id}` body is fetched once
and served by a bare FastAPI app (one route returning that body as a constant dict, through
FastAPI's normal response path) under uvicorn with the same settings: one process, h11,
the same log level, its log lines going to a file too.

Timed: an httpx.AsyncClient with N connections sends a fixed number of GETs (after a
warm-up) to one server, then to the other, alternately, for a number of rounds. Printed:
each server's median requests/s, the ratio (target >= 0.5), p50/p99 latencies of the
median round, each server's own CPU time per request (steadier than the rates on a busy
machine) and the load generator's. The load generator runs on the same machine as the
servers, so the figures are for this machine as a whole; the load average is printed
with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

HERE = Path(__file__).resolve()
MASTER = "sk-bench-master"
BATCH = {
    "model": "openai/gpt-4o-mini",
    "requests": [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": f"Fact {i}?"}]}}
        for i in range(3)
    ],
}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the bare app (a child process) ----------------------------------------------------------


def bare_main(port: int, body_path: Path, log_level: str) -> None:
    """One FastAPI route returning the gateway's JSON as a constant dict, under uvicorn
    configured as `unibatch serve` configures it (h11, lifespan on, logs through the root
    logger at the same level)."""
    import logging

    import uvicorn
    from fastapi import FastAPI

    body: dict[str, Any] = json.loads(body_path.read_text())
    app = FastAPI()

    @app.get("/v1/batches/{batch_id}")
    async def retrieve(batch_id: str) -> dict[str, Any]:
        return body

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level=log_level,
        lifespan="on",
        log_config=None,
        http="h11",
    )
    uvicorn.Server(config).run()


# -- servers -----------------------------------------------------------------------------


class Server:
    """A server subprocess; its output goes to a log file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 60
        while True:
            try:
                # Any answer (404 included) means the server is up.
                httpx.get(f"{self.base}/health", timeout=1)
                return
            except httpx.TransportError as exc:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"{args} did not start; see {log_path}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


def start_gateway(tmp: Path, log_level: str) -> Server:
    env = dict(os.environ)
    env.update(
        UNIBATCH_MASTER_KEY=MASTER,
        UNIBATCH_DATABASE_URL=f"sqlite:///{tmp / 'gateway.db'}",
        UNIBATCH_FILES_DIR=str(tmp / "files"),
        UNIBATCH_LOG_LEVEL=log_level.upper(),
        # No worker runs: the key is never sent anywhere, the model only has to be offered.
        OPENAI_API_KEY="sk-unused",
    )
    port = free_port()
    args = [sys.executable, "-m", "unibatch", "serve", "--port", str(port), "--no-worker"]
    return Server(args, env, tmp / "gateway.log", port)


def start_bare(tmp: Path, body_path: Path, log_level: str) -> Server:
    port = free_port()
    args = [sys.executable, str(HERE), "bare", str(port), str(body_path), log_level]
    return Server(args, dict(os.environ), tmp / "bare.log", port)


def create_batch(gateway: Server) -> tuple[str, str]:
    """A virtual key and one small batch of it; returns (key, batch id)."""
    with httpx.Client(base_url=gateway.base, timeout=30) as client:
        made = client.post(
            "/v1/keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {MASTER}"}
        )
        made.raise_for_status()
        key = str(made.json()["key"])
        created = client.post("/v1/batches", json=BATCH, headers={"Authorization": f"Bearer {key}"})
        created.raise_for_status()
        return key, str(created.json()["id"])


# -- the load generator ------------------------------------------------------------------


async def load(url: str, key: str, requests: int, connections: int) -> list[float]:
    """`requests` GETs of `url` over `connections` kept-alive connections; per-request
    latencies in seconds. Every answer must be 200."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    left = requests
    async with httpx.AsyncClient(
        limits=limits, timeout=60, headers={"Authorization": f"Bearer {key}"}
    ) as client:

        async def one_connection() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                t0 = time.perf_counter()
                response = await client.get(url)
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"GET {url}: HTTP {response.status_code}")

        await asyncio.gather(*(one_connection() for _ in range(connections)))
    return latencies


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(server: Server, path: str, key: str, opts: argparse.Namespace) -> dict[str, float]:
    url = server.base + path
    asyncio.run(load(url, key, opts.warmup, opts.connections))
    cpu = cpu_seconds(server.proc.pid)
    client_cpu = time.process_time()
    start = time.perf_counter()
    latencies = asyncio.run(load(url, key, opts.requests, opts.connections))
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    return {
        "rps": opts.requests / wall,
        "p50_ms": 1000 * pct(latencies, 50),
        "p99_ms": 1000 * pct(latencies, 99),
        # The server's own CPU per request: steadier than the rate on a busy machine.
        "cpu_us": 1e6 * (cpu_seconds(server.proc.pid) - cpu) / opts.requests,
        # The load generator's, for the rate one would expect if CPU were all that counted.
        "client_cpu_us": 1e6 * client_cpu / opts.requests,
    }


def median_round(rounds: list[dict[str, float]]) -> dict[str, float]:
    rate = statistics.median_low(r["rps"] for r in rounds)
    return next(r for r in rounds if r["rps"] == rate)


def main() -> None:
    if sys.argv[1:2] == ["bare"]:
        bare_main(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="timed requests per round")
    parser.add_argument("--warmup", type=int, default=300, help="untimed requests first")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per server (median)")
    parser.add_argument("--log-level", default="info", help="both servers' log level")
    parser.add_argument("--out", type=Path, default=HERE.parent / "out" / "gateway_reads.json")
    opts = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="unibatch-gwreads-") as tmp_name:
        tmp = Path(tmp_name)
        gateway = start_gateway(tmp, opts.log_level)
        bare: Server | None = None
        try:
            key, batch_id = create_batch(gateway)
            path = f"/v1/batches/{batch_id}"
            reply = httpx.get(
                gateway.base + path, headers={"Authorization": f"Bearer {key}"}, timeout=30
            )
            reply.raise_for_status()
            body_path = tmp / "body.json"
            body_path.write_bytes(reply.content)
            bare = start_bare(tmp, body_path, opts.log_level)
            same = httpx.get(bare.base + path, timeout=30).json() == reply.json()
            if not same:
                raise RuntimeError("the bare endpoint does not return the gateway's JSON")
            log(f"batch {batch_id}: {len(reply.content)} bytes of JSON; measuring")
            ours: list[dict[str, float]] = []
            theirs: list[dict[str, float]] = []
            for i in range(opts.rounds):
                ours.append(measure(gateway, path, key, opts))
                theirs.append(measure(bare, path, key, opts))
                log(
                    f"round {i + 1}: gateway {ours[-1]['rps']:.0f} req/s "
                    f"({ours[-1]['cpu_us']:.0f} us CPU each), bare {theirs[-1]['rps']:.0f} req/s "
                    f"({theirs[-1]['cpu_us']:.0f} us)"
                )
        finally:
            if bare is not None:
                bare.stop()
            gateway.stop()
    load_after = os.getloadavg()
    gw, fa = median_round(ours), median_round(theirs)
    result = {
        "requests": opts.requests,
        "warmup": opts.warmup,
        "connections": opts.connections,
        "rounds": opts.rounds,
        "log_level": opts.log_level,
        "body_bytes": len(reply.content),
        "gateway": gw,
        "bare": fa,
        "ratio": gw["rps"] / fa["rps"],
        "all_gateway_rps": [r["rps"] for r in ours],
        "all_bare_rps": [r["rps"] for r in theirs],
        "all_gateway_cpu_us": [r["cpu_us"] for r in ours],
        "all_bare_cpu_us": [r["cpu_us"] for r in theirs],
        "cpu_ratio": statistics.median(r["cpu_us"] for r in theirs)
        / statistics.median(r["cpu_us"] for r in ours),
        "client_cpu_us": statistics.median(r["client_cpu_us"] for r in ours + theirs),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    print(
        f"GET /v1/batches/{{id}} ({len(reply.content)} bytes), {opts.connections} connections, "
        f"{opts.requests} requests, median of {opts.rounds} rounds:\n"
        f"  gateway: {gw['rps']:.0f} req/s, p50 {gw['p50_ms']:.1f} ms, p99 {gw['p99_ms']:.1f} ms, "
        f"server CPU {gw['cpu_us']:.0f} us/request\n"
        f"  bare FastAPI: {fa['rps']:.0f} req/s, p50 {fa['p50_ms']:.1f} ms, "
        f"p99 {fa['p99_ms']:.1f} ms, server CPU {fa['cpu_us']:.0f} us/request\n"
        f"  ratio {result['ratio']:.2f} (target >= 0.5); CPU per request, bare / gateway "
        f"(median of rounds): {result['cpu_ratio']:.2f}; the load generator's CPU "
        f"{result['client_cpu_us']:.0f} us/request\n"
        f"  load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.1f}' for x in load_before)}, after "
        f"{'/'.join(f'{x:.1f}' for x in load_after)}"
    )
    opts.out.parent.mkdir(exist_ok=True)
    opts.out.write_text(json.dumps(result, indent=2))
    log(f"figures in {opts.out}")


if __name__ == "__main__":
    main()
