"""The `local` provider as a user meets it: `unibatch emulate` prints the line to set, and
a submit for `local/<model>` runs through the real-time runner to unified results marked
`realtime`, with a null cost."""

from __future__ import annotations

import signal
from pathlib import Path

import orjson

from tests.support.emulated import chat_lines
from tests.support.processes import free_port, run, start, wait_for


def test_emulate_prints_the_local_line_and_a_local_batch_runs(tmp_path: Path) -> None:
    log = tmp_path / "emulate.log"
    emulate = start(["emulate", "--port", str(free_port()), "--set", "max_rpm=100000"], {}, log)
    try:
        wait_for(lambda: b"UNIBATCH_LOCAL_BASE_URL=" in log.read_bytes(), 60, "emulator lines")
        printed = dict(
            line.split("=", 1) for line in log.read_text().splitlines() if "_BASE_URL=" in line
        )
        assert printed["UNIBATCH_LOCAL_BASE_URL"].endswith("/local/v1")
        env = {
            "UNIBATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "UNIBATCH_LOCAL_BASE_URL": printed["UNIBATCH_LOCAL_BASE_URL"],
            "UNIBATCH_REALTIME_LIMITS": '{"local": {"rpm": 6000, "concurrency": 4}}',
        }
        path = tmp_path / "in.jsonl"
        lines = chat_lines(20, model="local/qwen2.5:7b")
        path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
        submitted = run(["submit", str(path), "--wait", "--json"], env)
        assert submitted.returncode == 0, submitted.stderr
        batch = orjson.loads(submitted.stdout)
        assert batch["status"] == "completed"
        assert batch["request_counts"]["succeeded"] == 20
        unified = run(["results", batch["id"], "--format", "unified"], env)
        rows = [orjson.loads(line) for line in unified.stdout.splitlines()]
        assert [r["custom_id"] for r in rows] == [f"r-{i:05d}" for i in range(20)]
        assert {(r["provider"], r["model"], r["mode"]) for r in rows} == {
            ("local", "qwen2.5:7b", "realtime")
        }
        assert all(r["cost"] is None and r["usage"]["input_tokens"] > 0 for r in rows)

        # Without the server's address the submit stops before anything is stored.
        unset = run(["submit", str(path)], {**env, "UNIBATCH_LOCAL_BASE_URL": ""})
        assert unset.returncode != 0 and "UNIBATCH_LOCAL_BASE_URL" in unset.stderr
    finally:
        emulate.send_signal(signal.SIGTERM)
        emulate.wait(timeout=30)
