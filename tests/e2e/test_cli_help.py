"""`--help` as the documentation: every option and argument described, flags shown as
flags; tables that show ids whole in a narrow terminal; a demo that says where its data
went."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer
from typer.testing import CliRunner

from tests.support.emulated import chat_lines
from tests.support.processes import run
from unibatch.cli import app


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under `command`, with the words that run it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


ROOT = typer.main.get_command(app)
ALL = list(commands(ROOT))


def params(command: Any) -> list[Any]:
    return list(command.get_params(typer.Context(command)))


def test_the_walk_sees_every_command() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"submit", "status", "list", "wait", "demo", "keys create", "db upgrade"} <= names


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "unibatch" for p, _ in ALL])
def test_every_option_and_argument_is_described(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"unibatch {' '.join(path)} has no description"
    for param in params(command):
        assert (getattr(param, "help", None) or "").strip(), (
            f"unibatch {' '.join(path)}: {param.name} has no help"
        )


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(p) or "unibatch" for p, _ in ALL])
def test_flags_are_shown_as_flags(path: tuple[str, ...], command: Any) -> None:
    for param in params(command):
        if getattr(param, "is_flag", False):
            assert not param.secondary_opts, f"{param.opts} has a --no- twin"
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert shown.exit_code == 0, shown.output
    assert "<bool>" not in shown.output
    for param in params(command):
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in shown.output


def test_demo_help_names_its_database_and_output() -> None:
    shown = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    text = " ".join(shown.output.split())
    assert "a temporary SQLite database, deleted when the demo ends" in re.sub(r"[│ ]+", " ", text)
    assert "demo-results.jsonl" in text


def test_list_and_keys_list_show_whole_ids_in_a_narrow_terminal(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = {"UNIBATCH_DATABASE_URL": sqlite_url, "OPENAI_API_KEY": "test-key", "COLUMNS": "60"}
    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in chat_lines(2)))
    batch_ids = [run(["submit", str(path)], env).stdout.strip() for _ in range(2)]
    key_ids = [
        orjson.loads(run(["keys", "create", name, "--json"], env).stdout)["id"]
        for name in ("a-team-with-a-rather-long-name", "b")
    ]
    listed = run(["list"], env)
    assert listed.returncode == 0, listed.stderr
    # The tables are the commands' answer: on stdout, for `| less` or `> file`.
    for batch_id in batch_ids:
        assert batch_id in listed.stdout
    keys = run(["keys", "list"], env)
    assert keys.returncode == 0, keys.stderr
    for key_id in key_ids:
        assert key_id in keys.stdout
    assert "…" not in listed.stdout + keys.stdout


def test_demo_writes_outside_the_working_directory_and_says_where(tmp_path: Path) -> None:
    work = tmp_path / "project"
    work.mkdir()
    data = tmp_path / "data"
    env = {"HOME": str(tmp_path), "XDG_DATA_HOME": str(data), "COLUMNS": "200"}
    result = run(["demo"], env, timeout=180, cwd=work)
    assert result.returncode == 0, result.stderr
    assert list(work.iterdir()) == []
    written = data / "unibatch" / "demo-results.jsonl"
    assert len(written.read_bytes().splitlines()) == 200
    assert f"wrote 200 results to {written}" in result.stderr
    assert "temporary database" in result.stderr
