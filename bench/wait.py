"""Submit and wait benchmark: ``unibatch submit`` and a worker's whole ``wait`` for the batch,
against a lean client doing the same round trip in the same run.

    python bench/wait.py                                     # 100,000 requests, SQLite
    python bench/wait.py --requests 100000 --requests 1000000 --repeat 3

For each size N: write N OpenAI batch lines to a temporary JSONL file, start the OpenAI
emulator, then per repeat:

* **submit** (timed): ``python -m unibatch submit FILE --model openai/gpt-4o-mini`` on a
  fresh SQLite file, the wall time of the whole command (process start included) and its
  peak RSS; ``python -m unibatch --help`` is timed too, to show what process start costs.
* **wait** (timed, ``_wait_child.py wait``): a fresh worker process runs the engine until
  the batch is terminal: upload, create, poll, ingest, finalize. Peak RSS of the worker
  plus its decoder helper.
* **lean** (timed, ``_wait_child.py lean``): httpx uploads the same file, creates the batch,
  polls until it is completed, streams the output file, ``orjson.loads`` each line, one
  ``executemany`` into a plain SQLite table.

Prints a table (medians) and writes ``bench/out/wait-<N>.json``. See bench/README.md.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from _bytecode import compile_unibatch
from ingest import TOPICS, Emulator, log
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_wait_child.py"
OUT = HERE / "out"
MODEL = "gpt-4o-mini"
TARGET_SUBMIT_S = 2.0
TARGET_WAIT_RATIO = 1.2
TARGET_RSS_MB = 100.0
# Requests per OpenAI batch (its limit; the adapter splits a larger job the same way).
PART = 50_000


def write_batch_lines(path: Path, n: int) -> list[Path]:
    """N OpenAI batch lines in `path`, and the same lines in part files of at most
    `PART` lines (what the lean client uploads, one provider batch each)."""
    parts = [path.with_suffix(f".{k}.jsonl") for k in range(0, max(n, 1), PART)]
    with path.open("wb", buffering=1024 * 1024) as fh:
        for i in range(n):
            line = {
                "custom_id": f"req-{i:08d}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {
                    "model": MODEL,
                    "messages": [
                        {"role": "system", "content": "You are a concise assistant."},
                        {
                            "role": "user",
                            "content": f"Request {i}: one fact about {TOPICS[i % len(TOPICS)]}.",
                        },
                    ],
                    "max_tokens": 64,
                },
            }
            fh.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
    with path.open("rb") as whole:
        for part in parts:
            with part.open("wb") as out:
                out.writelines(itertools.islice(whole, PART))
    return parts


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """Wall seconds, CPU seconds, peak RSS (MB) and stdout of a command run to its end.
    CPU time is the steadier figure on a shared machine."""
    with tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, env=env)
        # wait4: the resource usage of this child alone (its own peak RSS, in KiB).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[:4]} failed with exit code {proc.returncode}")
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return wall, cpu, usage.ru_maxrss / 1024, out.read().decode()


def child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed with exit code {proc.returncode}")
    figures: dict[str, Any] = orjson.loads(proc.stdout.strip().splitlines()[-1])
    return figures


def run_size(n: int, opts: argparse.Namespace) -> dict[str, Any]:
    log(f"[bold]== {n:,} requests ==[/]")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="unibatch-bench-") as tmp_name:
        tmp = Path(tmp_name)
        requests = tmp / "requests.jsonl"
        parts = write_batch_lines(requests, n)
        size = requests.stat().st_size
        log(f"wrote {n:,} requests ({size / 1e6:.1f} MB)")
        emulator = Emulator(tmp / "emulator.log", opts.time_scale)
        env = os.environ | {"OPENAI_API_KEY": "bench", "OPENAI_BASE_URL": emulator.base_url}
        runs: list[dict[str, Any]] = []
        try:
            for attempt in range(opts.repeat):
                db = tmp / f"unibatch-{attempt}.db"
                url = f"sqlite:///{db}"
                help_s, _, _, _ = timed([sys.executable, "-m", "unibatch", "--help"], env)
                submit_cmd = [sys.executable, "-m", "unibatch", "submit", str(requests)]
                submit_cmd += ["--model", f"openai/{MODEL}", "--database", url, "--json"]
                submit_s, submit_cpu, submit_rss, out = timed(submit_cmd, env)
                batch_id = orjson.loads(out)["id"]
                log(
                    f"submit: {submit_s:.2f}s ({submit_cpu:.2f}s CPU; --help {help_s:.2f}s), "
                    f"peak {submit_rss:.0f} MB"
                )
                common = ["--base-url", emulator.base_url]
                ours = child(["wait", *common, "--database-url", url, "--batch-id", batch_id])
                files = [arg for part in parts for arg in ("--requests-file", str(part))]
                lean_db = ["--sqlite-path", str(tmp / f"lean-{attempt}.db")]
                lean = child(["lean", *common, *files, *lean_db])
                if ours["succeeded"] != n or lean["rows"] != n:
                    log(f"[red]warning: {ours['succeeded']} / {lean['rows']} rows, not {n}[/]")
                runs.append(
                    {
                        "help_seconds": round(help_s, 3),
                        "submit_seconds": round(submit_s, 3),
                        "submit_cpu_seconds": round(submit_cpu, 3),
                        "submit_peak_rss_mb": round(submit_rss, 1),
                        "ours": ours,
                        "lean": lean,
                        "ratio": round(ours["wall_seconds"] / lean["wall_seconds"], 3),
                    }
                )
                log(
                    f"wait: ours {ours['wall_seconds']:.2f}s "
                    f"(CPU {ours['cpu_seconds']:.2f}s + decoder "
                    f"{ours['decoder_cpu_seconds']:.2f}s; "
                    f"phases end at {ours['phase_ends']}), lean {lean['wall_seconds']:.2f}s "
                    f"(CPU {lean['cpu_seconds']:.2f}s; {lean['phase_ends']}), "
                    f"peak {ours['peak_rss_total_mb']:.0f} MB (lean {lean['peak_rss_mb']:.0f} MB), "
                    f"load {os.getloadavg()[0]:.1f}"
                )
                db.unlink(missing_ok=True)
                (tmp / f"lean-{attempt}.db").unlink(missing_ok=True)
        finally:
            emulator.stop()

    def median(get: Any) -> float:
        return float(statistics.median(get(r) for r in runs))

    figures: dict[str, Any] = {
        "requests": n,
        "submit_seconds": median(lambda r: r["submit_seconds"]),
        "submit_cpu_seconds": median(lambda r: r["submit_cpu_seconds"]),
        "help_seconds": median(lambda r: r["help_seconds"]),
        "submit_peak_rss_mb": median(lambda r: r["submit_peak_rss_mb"]),
        "wait_seconds": median(lambda r: r["ours"]["wall_seconds"]),
        "lean_seconds": median(lambda r: r["lean"]["wall_seconds"]),
        "wait_cpu_seconds": median(
            lambda r: r["ours"]["cpu_seconds"] + r["ours"]["decoder_cpu_seconds"]
        ),
        "lean_cpu_seconds": median(lambda r: r["lean"]["cpu_seconds"]),
        "ratio": median(lambda r: r["ratio"]),
        "wait_peak_rss_mb": median(lambda r: r["ours"]["peak_rss_total_mb"]),
        "lean_peak_rss_mb": median(lambda r: r["lean"]["peak_rss_mb"]),
        "runs": runs,
        "request_file_bytes": size,
        "time_scale": opts.time_scale,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out_path = OUT / f"wait-{n}.json"
    out_path.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    log(f"wrote {out_path}")
    return figures


def mark(ok: bool) -> str:
    return "[green]pass[/]" if ok else "[red]FAIL[/]"


def table(results: list[dict[str, Any]]) -> Table:
    t = Table(title="unibatch submit and wait vs a lean client (medians)")
    for col in (
        "requests",
        "submit (s)",
        f"<= {TARGET_SUBMIT_S:.0f} s",
        "submit CPU (s)",
        "--help (s)",
        "wait (s)",
        "lean (s)",
        "ratio",
        f"<= {TARGET_WAIT_RATIO}",
        "wait CPU (s)",
        "lean CPU (s)",
        "wait peak RSS (MB)",
        f"< {TARGET_RSS_MB:.0f} MB",
        "lean RSS (MB)",
    ):
        t.add_column(col, justify="right")
    for r in results:
        t.add_row(
            f"{r['requests']:,}",
            f"{r['submit_seconds']:.2f}",
            mark(r["submit_seconds"] <= TARGET_SUBMIT_S * r["requests"] / 100_000),
            f"{r['submit_cpu_seconds']:.2f}",
            f"{r['help_seconds']:.2f}",
            f"{r['wait_seconds']:.2f}",
            f"{r['lean_seconds']:.2f}",
            f"{r['ratio']:.2f}",
            mark(r["ratio"] <= TARGET_WAIT_RATIO),
            f"{r['wait_cpu_seconds']:.2f}",
            f"{r['lean_cpu_seconds']:.2f}",
            f"{r['wait_peak_rss_mb']:.0f}",
            mark(r["wait_peak_rss_mb"] < TARGET_RSS_MB),
            f"{r['lean_peak_rss_mb']:.0f}",
        )
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description="Time unibatch submit and wait.")
    parser.add_argument(
        "--requests", type=int, action="append", help="batch size; repeat for several"
    )
    parser.add_argument("--time-scale", type=float, default=0.01, help="emulator time scale")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (medians shown)")
    opts = parser.parse_args()
    compile_unibatch()
    if opts.repeat < 1:
        parser.error("--repeat takes a count >= 1")
    results = [run_size(n, opts) for n in opts.requests or [100_000]]
    Console(width=None if sys.stdout.isatty() else 150).print(table(results))


if __name__ == "__main__":
    main()
