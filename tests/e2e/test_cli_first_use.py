"""The CLI as a new user meets it: an unfinished batch is not mistaken for an empty one,
an interrupted wait leaves the batch id on screen, and credentials stay off it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.emulated import chat_lines
from tests.support.processes import run, start, wait_for
from unibatch.types import Cost


@pytest.fixture
def env(emulator: Any, sqlite_url: str) -> dict[str, str]:
    return {
        "UNIBATCH_DATABASE_URL": sqlite_url,
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": emulator.base_url("openai"),
        "UNIBATCH_POLL_SCHEDULE": "0.1",
    }


def requests_file(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(n)))
    return path


def test_results_of_an_unfinished_batch_are_refused_unless_partial(
    env: dict[str, str], tmp_path: Path
) -> None:
    submitted = run(["submit", str(requests_file(tmp_path))], env)
    batch_id = submitted.stdout.strip()
    out = tmp_path / "out.jsonl"
    refused = run(["results", batch_id, "-o", str(out)], env)
    assert refused.returncode == 5
    assert f"batch {batch_id} is pending" in refused.stderr and "--partial" in refused.stderr
    assert not out.exists()
    partial = run(["results", batch_id, "--partial", "-o", str(out)], env)
    assert partial.returncode == 0, partial.stderr
    assert out.read_bytes() == b""  # nothing has landed yet, and that was asked for


def test_submit_wait_names_the_batch_before_it_waits(env: dict[str, str], tmp_path: Path) -> None:
    result = run(["submit", str(requests_file(tmp_path)), "--wait", "--json"], env)
    assert result.returncode == 0, result.stderr
    batch_id = orjson.loads(result.stdout)["id"]
    first = result.stderr.splitlines()[0]
    assert batch_id in first and f"unibatch wait {batch_id}" in first


@pytest.mark.postgres
def test_the_worker_does_not_print_the_database_password(postgres_url: str, tmp_path: Path) -> None:
    secret = "s3cret-pass"
    url = postgres_url.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in url
    log = tmp_path / "worker.log"
    worker = start(["worker"], {"UNIBATCH_DATABASE_URL": url}, log)
    try:
        wait_for(lambda: b"worker " in log.read_bytes(), 60, "the worker's start-up line")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    text = log.read_text()
    assert secret not in text
    assert "postgres:***@" in text


def test_costs_are_shown_without_float_noise() -> None:
    cost = Cost(input=0.1, output=0.2)
    assert cost.total == 0.30000000000000004  # the float sum carries noise
    assert cost.as_dict()["total"] == 0.3
    assert (
        orjson.dumps(cost.as_dict()) == b'{"input":0.1,"output":0.2,"total":0.3,"currency":"USD"}'
    )


@pytest.mark.parametrize("command", [["serve"], ["emulate"]])
def test_a_port_in_use_ends_the_command_at_once(
    command: list[str], sqlite_url: str, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run([*command, "--port", str(port)], {"UNIBATCH_DATABASE_URL": sqlite_url})
    assert result.returncode == 2  # a configuration problem, not "the batch ended failed"
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "choose another --port" in result.stderr


def test_version_and_status_values(sqlite_url: str) -> None:
    version = run(["--version"], {})
    assert version.returncode == 0 and version.stdout.startswith("unibatch ")
    refused = run(["list", "--status", "bogus"], {"UNIBATCH_DATABASE_URL": sqlite_url})
    assert refused.returncode == 2
    assert "status 'bogus' is not one of pending, validating, in_progress" in refused.stderr
    assert (
        run(["list", "--status", "in_progress"], {"UNIBATCH_DATABASE_URL": sqlite_url}).returncode
        == 0
    )


def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    unreachable = run(["list"], {"UNIBATCH_DATABASE_URL": "postgresql://me:hunter2@127.0.0.1:1/db"})
    assert unreachable.returncode == 2
    (line,) = unreachable.stderr.strip().splitlines()
    assert line.startswith("error: cannot open the database postgresql://me:***@127.0.0.1:1/db")
    assert "hunter2" not in unreachable.stderr
    missing = tmp_path / "no" / "such" / "unibatch.db"
    typo = run(["list"], {"UNIBATCH_DATABASE_URL": f"sqlite:///{missing}"})
    assert typo.returncode == 2
    assert f"the directory {missing.parent} does not exist" in typo.stderr
    assert not missing.parent.exists()


def test_an_output_file_in_a_missing_directory_is_refused_before_anything_runs(
    sqlite_url: str, tmp_path: Path
) -> None:
    requests = tmp_path / "in.jsonl"
    requests.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(2)))
    # Wide enough that click's error box does not wrap the path.
    env = {"UNIBATCH_DATABASE_URL": sqlite_url, "OPENAI_API_KEY": "test-key", "COLUMNS": "400"}
    missing = tmp_path / "no" / "such" / "out.jsonl"
    refused = run(["submit", str(requests), "--wait", "-o", str(missing)], env)
    assert refused.returncode == 2
    assert f"the directory {missing.parent} does not exist" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Refused before the batch was stored, not after it ran.
    assert orjson.loads(run(["list", "--json"], env).stdout) == []
    demo = run(["demo", "-o", str(missing)], {"HOME": str(tmp_path), "COLUMNS": "400"})
    assert demo.returncode == 2 and "does not exist" in demo.stderr
