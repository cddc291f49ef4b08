"""How long the CLI takes to start: `unibatch --help`, `--version`, `status ID` and `list`,
beside the interpreter's own start (`python -c pass`), in the same run.

    python bench/startup.py              # 15 runs of each
    python bench/startup.py --runs 30

Each command runs as a fresh process (`python -m unibatch ...`, what the `unibatch`
script does) with its output discarded; wall time from spawn to exit. `status` reads a
batch of 10 requests from a SQLite database this script creates in a temporary directory
(schema current, so no migration runs); `list` lists it. unibatch's byte code is written
first, as pip writes it at install. Prints median and p90 per command, in ms, and
writes them to bench/out/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _bytecode import compile_unibatch

OUT = Path(__file__).parent / "out"


def make_database(folder: Path) -> tuple[str, str]:
    """A SQLite database holding one small submitted batch: (URL, batch id)."""
    from unibatch import Client

    url = f"sqlite:///{folder / 'startup.db'}"
    lines = [
        {
            "custom_id": f"r{i}",
            "body": {
                "model": "openai/gpt-4o-mini",
                "messages": [{"role": "user", "content": f"say {i}"}],
            },
        }
        for i in range(10)
    ]
    # Nothing is sent: the key only has to be there for the submit to be accepted.
    with Client(url, env={"OPENAI_API_KEY": "bench"}) as client:
        batch = client.submit(lines)
    return url, batch.id


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}")
    return elapsed


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command")
    opts = parser.parse_args()
    compile_unibatch()
    with tempfile.TemporaryDirectory() as tmp:
        url, batch_id = make_database(Path(tmp))
        env = {**os.environ, "UNIBATCH_DATABASE_URL": url}
        python = [sys.executable]
        commands = {
            "python -c pass (baseline)": [*python, "-c", "pass"],
            "unibatch --help": [*python, "-m", "unibatch", "--help"],
            "unibatch --version": [*python, "-m", "unibatch", "--version"],
            "unibatch status ID": [*python, "-m", "unibatch", "status", batch_id],
            "unibatch list": [*python, "-m", "unibatch", "list"],
        }
        for cmd in commands.values():  # warm the file cache and byte code once
            timed(cmd, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        # Interleaved, so a burst of load on the machine hits every command alike.
        for _ in range(opts.runs):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
    figures = {
        name: {"median_ms": statistics.median(ts) * 1000, "p90_ms": p90(ts) * 1000}
        for name, ts in times.items()
    }
    print(f"{'command':<28} {'median ms':>10} {'p90 ms':>8}   ({opts.runs} runs each)")
    for name, f in figures.items():
        print(f"{name:<28} {f['median_ms']:>10.0f} {f['p90_ms']:>8.0f}")
    OUT.mkdir(exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps({"runs": opts.runs, **figures}, indent=2))


if __name__ == "__main__":
    main()
