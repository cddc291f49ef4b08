"""`unibatch status`, `list` and `results` without typer, click, rich or SQLAlchemy.

typer and click take about 0.1 s of CPU to import, rich about as much, SQLAlchemy 0.2 s:
together several times the 0.3 s a status should take (bench/startup.py), and a third of
an export of 100,000 results (bench/export.py). `run` answers `status BATCH_ID [--json]
[--database URL]`, `list [--status S] [--limit N] [--json] [--database URL]` and
`results BATCH_ID [-o FILE] [--format F] [--partial] [--database URL]` on a SQLite
store at the newest schema with the standard library's `sqlite3`
(`store.lite`) and prints what the typer commands print. Anything else (other
arguments, `--help`, PostgreSQL, a database to create or upgrade, no such batch, a
batch not finished, an error) it leaves, having printed nothing, to the typer commands,
which do all of that and say what went wrong. They call the same functions first.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from unibatch import logs
from unibatch.cli.summary import plain_line, plain_output, plain_table, print_json, summary_rows
from unibatch.dburl import database_url
from unibatch.engine.views import view
from unibatch.errors import ConfigurationError
from unibatch.store.lite import Reader
from unibatch.types import BatchStatus


def parse(
    argv: list[str],
    command: str,
    flags: Sequence[str],
    options: dict[str, str],
    *,
    takes_arg: bool = True,
) -> dict[str, Any] | None:
    """`argv` of `command ARG` (of `command` alone without `takes_arg`) with `flags` and
    `options` (each spelling to its name), as click reads them: {"arg": ARG, name: value,
    flag: True}; None for anything else (another command, `--help`, an unknown option, a
    value that looks like an option, a missing or extra argument)."""
    if not argv or argv[0] != command:
        return None
    found: dict[str, Any] = dict.fromkeys(flags, False)
    rest = iter(argv[1:])
    for arg in rest:
        spelling, equals, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if len(arg) > 2 and arg[0] == "-" and arg[1] != "-":  # `-oFILE`
            spelling, equals, value = arg[:2], "=", arg[2:]
        if arg in flags:
            found[arg] = True
        elif spelling in options:
            if not equals:
                value = next(rest, "-")
                if value.startswith("-"):
                    return None
            found[options[spelling]] = value
        elif arg.startswith("-") or "arg" in found or not takes_arg:
            return None
        else:
            found["arg"] = arg
    return found if "arg" in found or not takes_arg else None


def _reader(database: str | None) -> Reader | None:
    try:
        return Reader.open(database_url(database))
    except sqlite3.Error:
        return None


def show_status(batch_id: str, database: str | None, as_json: bool) -> bool:
    """Print the batch as `unibatch status` does; False, having printed nothing, where
    the store must be opened by `open_store` or the batch is not there."""
    reader = _reader(database)
    if reader is None:
        return False
    try:
        state = reader.batch_state(batch_id)
    except sqlite3.Error:
        return False
    finally:
        reader.close()
    if state is None:
        return False
    batch = view(*state)
    if as_json:
        print_json(batch.as_dict())
        return True
    text = plain_table(*summary_rows(batch)) if plain_output(sys.stdout) else None
    if text is None:
        from unibatch.cli.render import print_table, summary

        print_table(summary(batch))
    else:
        sys.stdout.write(text)
    return True


def show_list(status: str | None, limit: int, database: str | None, as_json: bool) -> bool:
    """Print the batches as `unibatch list` does; False, having printed nothing, where
    the store must be opened by `open_store`, or the typer command must report a status
    it does not take."""
    if status is not None and status not in BatchStatus._value2member_map_:
        return False
    reader = _reader(database)
    if reader is None:
        return False
    try:
        states = reader.list_states(status=status, limit=limit)
    except sqlite3.Error:
        return False
    finally:
        reader.close()
    batches = [view(*state) for state in states]
    if as_json:
        print_json([batch.as_dict() for batch in batches])
    else:
        from unibatch.cli.render import batch_table, print_table

        print_table(batch_table(batches))
    return True


def _count(text: str) -> int | None:
    # As click reads an int option: optional sign, digits, surrounding space.
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


async def export_results(
    batch_id: str, output: Path | None, fmt: str, partial: bool, database: str | None
) -> int | None:
    """Write the results as `unibatch results` does; how many. None, having written
    nothing, where the store must be opened by `open_store`, the batch is not there, or
    it has not ended and `partial` is not set (the typer command says so)."""
    from unibatch.engine.export import write_results  # asyncio: not for `status`

    reader = _reader(database)
    if reader is None:
        return None
    try:
        state = reader.batch_state(batch_id)
        if state is None or not (partial or state[0].status.terminal):
            return None
        return await write_results(
            reader, batch_id, output, "unified" if fmt == "unified" else "openai"
        )
    finally:
        reader.close()


def _writable(output: str | None) -> bool:
    # As `common.writable_output`, which reports what is wrong.
    if output is None:
        return True
    path = Path(output)
    return path.expanduser().parent.is_dir() and not path.is_dir()


def _notice(text: str) -> None:
    line = plain_line(text, sys.stderr)
    if line is None:
        from unibatch.cli.render import console

        console.print(text)
    else:
        sys.stderr.write(line)


def run(argv: list[str]) -> bool:
    """Answer `argv` here if it is a `status`, `list` or `results` this module can do;
    whether it did."""
    status = parse(argv, "status", ["--json"], {"--database": "database"})
    listing = parse(
        argv,
        "list",
        ["--json"],
        {"--database": "database", "--status": "status", "--limit": "limit"},
        takes_arg=False,
    )
    results = parse(
        argv,
        "results",
        ["--partial"],
        {"--database": "database", "-o": "output", "--output": "output", "--format": "format"},
    )
    if status is None and listing is None and results is None:
        return False
    try:
        logs.level_name("WARNING")  # a bad log level is the typer command's to report
    except ConfigurationError:
        return False
    if status is not None:
        return show_status(status["arg"], status.get("database"), status["--json"])
    if listing is not None:
        # The typer command's default, and its report of a limit that is no number.
        limit = _count(listing.get("limit", "50"))
        if limit is None:
            return False
        return show_list(listing.get("status"), limit, listing.get("database"), listing["--json"])
    assert results is not None
    fmt, output = results.get("format", "openai"), results.get("output")
    if fmt not in ("openai", "unified") or not _writable(output):
        return False
    import asyncio

    path = None if output is None else Path(output)
    count = asyncio.run(
        export_results(results["arg"], path, fmt, results["--partial"], results.get("database"))
    )
    if count is None:
        return False
    if path is not None:
        _notice(f"wrote {count} results to {path}")
    return True
