"""`unibatch worker --metrics-port`: Prometheus scrapes the worker itself while it runs a
batch submitted through the CLI."""

from __future__ import annotations

import re
import signal
import socket
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.test_crash_safety import worker_env
from tests.e2e.test_retries import write
from tests.support.emulated import chat_lines
from tests.support.processes import run, start, wait_for
from unibatch.cli.common import EXIT_INPUT


def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_worker_serves_metrics_while_it_runs_a_batch(
    sqlite_url: str, emulator: Any, tmp_path: Path
) -> None:
    env = worker_env(sqlite_url, emulator)
    submitted = run(["submit", str(write(tmp_path / "in.jsonl", chat_lines(12)))], env)
    assert submitted.returncode == 0, submitted.stderr
    log = tmp_path / "worker.log"
    worker = start(["worker", "--metrics-port", "0"], env, log)
    try:
        wait_for(lambda: b"/metrics" in log.read_bytes(), 60, "the metrics address")
        found = re.search(r"http://127\.0\.0\.1:\d+/metrics", log.read_text())
        assert found, log.read_text()
        url = found.group(0)
        done = ("unibatch_batches", frozenset({("status", "completed"), ("provider", "openai")}))
        wait_for(lambda: _samples(url).get(done) == 1, 60, "the batch completed in metrics")
        got = _samples(url)
        assert got[("unibatch_requests", frozenset({("status", "succeeded")}))] == 12
        assert got[("unibatch_ingested_rows_total", frozenset())] == 12
        calls = (
            "unibatch_provider_requests_total",
            frozenset({("provider", "openai"), ("code", "200")}),
        )
        assert got[calls] >= 3
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()


def test_a_metrics_port_in_use_is_refused_before_the_worker_starts(
    sqlite_url: str, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        refused = run(
            ["worker", "--metrics-port", str(port)], {"UNIBATCH_DATABASE_URL": sqlite_url}
        )
    assert refused.returncode == EXIT_INPUT
    assert f"cannot listen on 127.0.0.1:{port}" in refused.stderr
