"""What every command shares: options, exit codes, JSON output, and the one place our
errors become an exit code."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.markup import escape
from typer.core import TyperCommand, TyperGroup

from unibatch import durations
from unibatch.cli.render import console
from unibatch.errors import ConfigurationError, InputError, NotFoundError, UnibatchError

EXIT_ERROR, EXIT_INPUT, EXIT_BATCH_FAILED, EXIT_NOT_FOUND, EXIT_NOT_FINISHED = 1, 2, 3, 4, 5
P = ParamSpec("P")
T = TypeVar("T")


class Format(StrEnum):
    openai = "openai"
    unified = "unified"


def _flags_as_flags(params: list[Any]) -> list[Any]:
    # typer labels every option with its type, so a flag would read `--wait <bool>` in
    # --help, as if it took a value; an empty metavar leaves the label out.
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose --help shows flags as flags (`--wait`, `--json`, `--help`)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))


class Group(TyperGroup):
    """A command group whose --help shows flags as flags."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_as_flags(super().get_params(ctx))


BatchIdArg = Annotated[
    str,
    typer.Argument(metavar="BATCH_ID", help="The batch's id (ubb_...), as submit printed it."),
]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        metavar="URL",
        help="Database URL (sqlite:///PATH or postgresql://...). "
        "Default: UNIBATCH_DATABASE_URL, else a SQLite file in the user data directory.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
CacheTtlOpt = Annotated[
    str | None,
    typer.Option(
        "--cache-ttl",
        metavar="DURATION",
        help="With the cache, take only answers younger than this (e.g. 12h, 7d). "
        "Default: any age.",
    ),
]
FormatOpt = Annotated[
    Format,
    typer.Option(
        "--format",
        help="openai: OpenAI batch output lines; unified: ours, with status, usage and cost.",
    ),
]


def parse_duration(value: str | None, option: str | None = None) -> float | None:
    """Seconds from a duration option (`90s`, `30m`, `6h`, `1h30m`; None stays None);
    an error names `option` when given."""
    if value is None:
        return None
    try:
        return durations.seconds(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def parse_deadline_option(value: str | None) -> float | None:
    """Epoch seconds from `--deadline` (a duration from now, or an ISO 8601 time with its
    timezone); refused here, before anything is read or stored, when malformed or past."""
    from unibatch.engine.deadline import parse_deadline

    try:
        return parse_deadline(value, time.time())
    except InputError as exc:
        raise typer.BadParameter(exc.detail, param_hint="--deadline") from None


def writable_output(value: Path | None) -> Path | None:
    """Checked before anything runs: a typo in a directory must not surface only after a
    day-long batch has ended."""
    if value is None:
        return None
    folder = value.expanduser().parent
    if not folder.is_dir():
        raise typer.BadParameter(f"the directory {folder} does not exist; create it first")
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a directory; give a file name")
    return value


OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write the results here (JSONL).",
        callback=writable_output,
    ),
]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; our errors become one red line and a meaningful exit code."""
    import asyncio  # not loaded for `--help`

    try:
        return asyncio.run(coro)
    except NotFoundError as exc:
        error(exc)
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except (InputError, ConfigurationError) as exc:
        error(exc)
        raise typer.Exit(EXIT_INPUT) from None
    except (UnibatchError, TimeoutError) as exc:
        error(exc)
        raise typer.Exit(EXIT_ERROR) from None


def async_command(fn: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Turn an `async def` command into one typer can call, run by `run`.

    `functools.wraps` keeps the signature typer reads the options from:

        @app.command()
        @async_command
        async def status(batch_id: str, database: DatabaseOpt = None) -> None: ...
    """

    @functools.wraps(fn)
    def command(*args: P.args, **kwargs: P.kwargs) -> None:
        run(fn(*args, **kwargs))

    return command


def error(exc: BaseException | str) -> None:
    # Unwrapped and unstyled, so the file:line of a message stays greppable.
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)
