"""`unibatch estimate` as users run it: a table or JSON, no database, no key, no network."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.support.processes import run
from unibatch import Client

EXAMPLE = Path(__file__).parents[2] / "src" / "unibatch" / "examples" / "chat_requests.jsonl"
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]


def test_estimate_json_compares_models(tmp_path: Path) -> None:
    # No provider key and a database path that does not exist: estimate needs neither.
    env = {"HOME": str(tmp_path), "UNIBATCH_DATABASE_URL": f"sqlite:///{tmp_path}/x/y.db"}
    args = ["estimate", str(EXAMPLE), "--json"]
    for model in MODELS:
        args += ["--model", model]
    result = run(args, env)
    assert result.returncode == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert data["lines"] == 200
    assert [m["model"] for m in data["models"]] == MODELS
    assert all(m["requests"] == 200 and m["input_tokens"] > 0 for m in data["models"])
    assert sum(m["cheapest"] for m in data["models"]) == 1
    assert not (tmp_path / "x").exists()
    with Client() as ub:
        same = ub.estimate(EXAMPLE, models=MODELS).as_dict()
    assert same == data


def test_estimate_table_and_bad_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "COLUMNS": "200"}
    table = run(["estimate", str(EXAMPLE), "-m", MODELS[0], "-m", MODELS[1]], env)
    assert table.returncode == 0, table.stderr
    assert "input tokens" in table.stdout and "* " in table.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "a", "body": {"messages": []}}\nnot json\n')
    failed = run(["estimate", str(bad), "-m", MODELS[0]], env)
    assert failed.returncode == 2
    assert f"{bad}:2:" in failed.stderr
