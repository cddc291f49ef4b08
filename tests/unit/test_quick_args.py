"""`unibatch status`, `list` and `results` are answered before typer loads (`cli.quick`) only
for arguments read there as click reads them; anything else goes to typer."""

from __future__ import annotations

from typing import Any

import pytest

from unibatch.cli.quick import parse

OPTIONS = {"--database": "database", "-o": "output", "--output": "output", "--format": "fmt"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["results", "ubb_1"], {"arg": "ubb_1", "--partial": False}),
        (
            ["results", "--partial", "ubb_1", "-o", "a.jsonl", "--format=unified"],
            {"arg": "ubb_1", "--partial": True, "output": "a.jsonl", "fmt": "unified"},
        ),
        (
            ["results", "-oa.jsonl", "ubb_1", "--database", "sqlite:///x.db"],
            {"arg": "ubb_1", "--partial": False, "output": "a.jsonl", "database": "sqlite:///x.db"},
        ),
        (
            ["results", "ubb_1", "--output=b", "--output", "c"],
            {"arg": "ubb_1", "--partial": False, "output": "c"},
        ),
        (["results"], None),  # no batch id
        (["results", "a", "b"], None),  # two
        (["results", "ubb_1", "--help"], None),
        (["results", "ubb_1", "-h"], None),
        (["results", "ubb_1", "--partia"], None),  # click's prefix matching: typer's
        (["results", "ubb_1", "-o"], None),
        (["results", "ubb_1", "-o", "--partial"], None),
        (["results", "--", "ubb_1"], None),
        (["status", "ubb_1"], None),  # another command
        (["--version"], None),
        ([], None),
    ],
)
def test_arguments(argv: list[str], expected: dict[str, Any] | None) -> None:
    assert parse(argv, "results", ["--partial"], OPTIONS) == expected


LIST_OPTIONS = {"--database": "database", "--status": "status", "--limit": "limit"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list"], {"--json": False}),
        (
            ["list", "--json", "--status=completed", "--limit", "5"],
            {"--json": True, "status": "completed", "limit": "5"},
        ),
        (["list", "ubb_1"], None),  # list takes no argument
        (["list", "--limit"], None),
        (["list", "--help"], None),
        (["list", "--status", "--json"], None),
        (["status", "ubb_1"], None),
    ],
)
def test_a_command_without_an_argument(argv: list[str], expected: dict[str, Any] | None) -> None:
    assert parse(argv, "list", ["--json"], LIST_OPTIONS, takes_arg=False) == expected
