"""What `wait` and `submit --wait` show while a batch runs: the provider's own progress
counters before any result has landed, and cancelled requests as cancelled, not errors.

The emulator's clock is moved to put the batch half-way; the CLI runs as a subprocess
with a terminal-like stderr (TTY_COMPATIBLE=1), so its progress bar draws as users see it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines
from tests.support.processes import run, start, wait_for

# Ten requests over 10,000 emulated seconds: moving the clock 5,000 s finishes exactly
# five, however long the test itself takes (it would need 1,000 real seconds to see six).
HALF_WAY = 5000.0
SLOW = {
    "time_scale": 1.0,
    "validating_seconds": 0.0,
    "in_progress_seconds": 2 * HALF_WAY,
    "cancelling_seconds": 0.0,
}


@pytest.fixture
def env(emulator: Any, sqlite_url: str) -> dict[str, str]:
    return {
        "UNIBATCH_DATABASE_URL": sqlite_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": emulator.base_url("openai"),
        "UNIBATCH_POLL_SCHEDULE": "0.1",
    }


def submit(env: dict[str, str], tmp_path: Path) -> str:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(10)))
    submitted = run(["submit", str(path)], env)
    assert submitted.returncode == 0, submitted.stderr
    return submitted.stdout.strip()


def status(env: dict[str, str], batch_id: str) -> dict[str, Any]:
    shown = run(["status", batch_id, "--json"], env)
    assert shown.returncode == 0, shown.stderr
    return dict(orjson.loads(shown.stdout))


def start_waiting(env: dict[str, str], batch_id: str, log: Path) -> subprocess.Popen[bytes]:
    terminal = {"TTY_COMPATIBLE": "1", "NO_COLOR": "1", "COLUMNS": "120"}
    return start(["wait", batch_id], {**env, **terminal}, log)


def half_way(env: dict[str, str], batch_id: str, clock: ShiftedClock) -> None:
    """Once the provider has the batch, move its clock so that it reports 5 of 10 done."""
    wait_for(
        lambda: status(env, batch_id)["status"] == "in_progress", 60, "the batch to be sent", 0.2
    )
    clock.advance(HALF_WAY)
    wait_for(
        lambda: status(env, batch_id)["request_counts"]["completed"] == 5,
        60,
        "the provider's count of 5 to be polled",
        0.2,
    )


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def row(text: str, name: str) -> str:
    """The value of one row of the summary table."""
    found = re.findall(rf"^\W*{name}\W+(\S+)", plain(text), re.MULTILINE)
    assert found, f"no {name!r} row in:\n{text}"
    return found[-1]


@pytest.mark.parametrize("emulator", [SLOW], indirect=True)
def test_progress_shows_the_providers_count_before_the_batch_ends(
    env: dict[str, str], emulator_clock: ShiftedClock, tmp_path: Path
) -> None:
    batch_id = submit(env, tmp_path)
    log = tmp_path / "wait.log"
    waiting = start_waiting(env, batch_id, log)
    try:
        half_way(env, batch_id, emulator_clock)
        counts = status(env, batch_id)["request_counts"]
        assert (counts["succeeded"], counts["pending"], counts["failed"]) == (5, 5, 0)
        shown = run(["status", batch_id], env).stdout
        assert row(shown, "status") == "in_progress"
        assert (row(shown, "succeeded"), row(shown, "pending")) == ("5", "5")
        wait_for(lambda: "5/10" in log.read_text(), 60, "the progress bar to show 5/10", 0.1)
        assert run(["results", batch_id, "--partial"], env).stdout == ""  # none landed yet
        emulator_clock.advance(2 * HALF_WAY)
        assert waiting.wait(timeout=120) == 0, log.read_text()
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert "10/10" in log.read_text()
    assert status(env, batch_id)["request_counts"]["succeeded"] == 10


@pytest.mark.parametrize("emulator", [SLOW], indirect=True)
def test_a_cancelled_batch_counts_cancelled_requests_not_errors(
    env: dict[str, str], emulator_clock: ShiftedClock, tmp_path: Path
) -> None:
    batch_id = submit(env, tmp_path)
    log = tmp_path / "wait.log"
    waiting = start_waiting(env, batch_id, log)
    try:
        half_way(env, batch_id, emulator_clock)
        assert run(["cancel", batch_id], env).returncode == 0
        assert waiting.wait(timeout=120) == 3, log.read_text()  # ended cancelled
    finally:
        if waiting.poll() is None:
            waiting.kill()
    text = log.read_text()
    # The bar never runs backwards (OpenAI zeroes its counters once a batch is cancelled),
    # and its last state counts the cancelled requests as cancelled.
    shown_done = [int(n) for n in re.findall(r"(\d+)/10\b", plain(text))]
    assert 5 in shown_done and shown_done == sorted(shown_done), shown_done
    assert "ok 5  errored 0  cancelled 5" in text
    assert (row(text, "succeeded"), row(text, "errored"), row(text, "cancelled")) == ("5", "0", "5")
    counts = status(env, batch_id)["request_counts"]
    assert (counts["cancelled"], counts["errored"], counts["failed"]) == (5, 0, 0)
    shown = run(["status", batch_id], env).stdout
    assert (row(shown, "errored"), row(shown, "cancelled")) == ("0", "5")
