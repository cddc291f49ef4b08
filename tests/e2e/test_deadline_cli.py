"""`submit --deadline` through the CLI, as users run it: the forms it takes, the errors it
gives before anything is stored, and the deadline shown by `status`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.test_crash_safety import worker_env
from tests.e2e.test_retries import write
from tests.support.emulated import chat_lines
from tests.support.processes import run

pytestmark = pytest.mark.slow


def _said(stderr: str) -> str:
    """The error as one line, out of the box rich draws around it."""
    return " ".join(stderr.replace("│", " ").split())


def test_deadline_option(database_url: str, emulator: Any, tmp_path: Path) -> None:
    env = worker_env(database_url, emulator)
    path = write(tmp_path / "in.jsonl", chat_lines(2))

    past = run(["submit", str(path), "--deadline", "2020-01-01T00:00:00Z"], env)
    assert past.returncode == 2
    assert "Invalid value for --deadline" in _said(past.stderr)
    assert "has already passed" in _said(past.stderr)
    naive = run(["submit", str(path), "--deadline", "2030-01-01T09:00:00"], env)
    assert naive.returncode == 2
    assert "has no timezone; add one" in _said(naive.stderr)
    vague = run(["submit", str(path), "--deadline", "soon"], env)
    assert vague.returncode == 2
    assert "is neither a duration" in _said(vague.stderr)
    listed = run(["list", "--json"], env)
    assert listed.returncode == 0, listed.stderr
    assert orjson.loads(listed.stdout) == []

    before = time.time()
    made = run(["submit", str(path), "--deadline", "2h", "--json"], env)
    assert made.returncode == 0, made.stderr
    batch = orjson.loads(made.stdout)
    assert before + 7200 <= batch["deadline"] <= time.time() + 7200
    assert batch["deadline_switched_at"] is None

    fixed = run(["submit", str(path), "--deadline", "2030-01-01T10:00:00+01:00"], env)
    assert fixed.returncode == 0, fixed.stderr
    batch_id = fixed.stdout.strip()
    shown = run(["status", batch_id, "--json"], env)
    assert orjson.loads(shown.stdout)["deadline"] == 1893488400.0
    text = run(["status", batch_id], env)
    assert "2030-01-01 09:00:00 UTC" in text.stdout
