"""How fast `unibatch estimate` reads a request file, and whether its memory stays flat.

    python bench/estimate.py                         # 100,000 and 1,000,000 lines
    python bench/estimate.py --lines 200000 --model openai/gpt-4o-mini

Prepared, not timed: a JSONL file of N chat requests (a system prompt and a ~60-word
user prompt of varied text, max_tokens 200) in a temporary directory. Timed: a fresh
`python -m unibatch estimate FILE --json` process per size, start-up included, with the
models given (default: one each of OpenAI, Anthropic and Gemini, so every line is counted
with o200k_base and translated three times). `lines/s` = N / wall time; `peak RSS` is the
child's maximum resident set (`ru_maxrss`), which a flat-memory estimator keeps the same
at 100k and 1M lines. Figures go to stdout and bench/out/estimate.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
WORDS = (
    "the quick brown fox jumps over a lazy dog while seven analysts review quarterly",
    "revenue figures and draft a concise summary of risks opportunities and next steps",
)
WORDS = tuple(word for line in WORDS for word in line.split(" "))
DEFAULT_MODELS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5", "gemini/gemini-2.5-flash"]


def write_requests(path: Path, n: int) -> None:
    with path.open("wb") as handle:
        for i in range(n):
            text = " ".join(WORDS[(i + k * 7) % len(WORDS)] for k in range(60))
            line = {
                "custom_id": f"r{i}",
                "body": {
                    "messages": [
                        {"role": "system", "content": "You are a careful analyst."},
                        {"role": "user", "content": f"Request {i}: {text}"},
                    ],
                    "max_tokens": 200,
                },
            }
            handle.write(json.dumps(line).encode() + b"\n")


def measure(path: Path, n: int, models: list[str]) -> dict[str, object]:
    args = [sys.executable, "-m", "unibatch", "estimate", str(path), "--json"]
    for model in models:
        args += ["--model", model]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, check=True, env=os.environ)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(done.stdout)
    assert result["lines"] == n, result
    return {
        "lines": n,
        "seconds": round(elapsed, 2),
        "lines_per_s": round(n / elapsed),
        # RUSAGE_CHILDREN keeps the largest child so far: sizes run smallest first, so
        # a figure that grows is this run's own.
        "peak_rss_mb": round(max(peak, before) / 1024, 1),
        "input_tokens": result["models"][0]["input_tokens"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, action="append")
    parser.add_argument("--model", action="append")
    options = parser.parse_args()
    sizes = sorted(options.lines or [100_000, 1_000_000])
    models = options.model or DEFAULT_MODELS
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"requests-{n}.jsonl"
            write_requests(path, n)
            figure = measure(path, n, models)
            figures.append(figure)
            print(json.dumps(figure), flush=True)
            path.unlink()
    OUT.mkdir(exist_ok=True)
    (OUT / "estimate.json").write_text(json.dumps({"models": models, "runs": figures}, indent=2))


if __name__ == "__main__":
    main()
