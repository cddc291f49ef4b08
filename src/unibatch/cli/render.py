"""How the CLI shows batches: progress bars, tables and summaries (rich)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from unibatch.cli.summary import money, summary_rows
from unibatch.types import Batch, RequestCounts

if TYPE_CHECKING:
    from rich.progress import Progress

# Notices, progress and errors go to stderr; what a command answers (tables, summaries)
# to stdout, so that `unibatch list | less` and `> file` get it.
console = Console(stderr=True)
out = Console()


def outcome_counts(counts: RequestCounts) -> str:
    """`ok 7  errored 1`, then expired and cancelled when there are any: a cancelled
    request is not an error, and is not shown as one."""
    parts = [f"ok {counts.succeeded}", f"errored {counts.errored}"]
    parts += [
        f"{name} {n}"
        for name, n in (("expired", counts.expired), ("cancelled", counts.cancelled))
        if n
    ]
    return "  ".join(parts)


class BatchProgress:
    """A progress bar fed by the engine's progress callback."""

    def __init__(self) -> None:
        # Only `--wait` shows one; the other commands need not load it.
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._progress: Progress = Progress(
            TextColumn("[bold]{task.fields[status]:<11}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}  {task.fields[cost]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task: int | None = None

    def __enter__(self) -> BatchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, batch: Batch) -> None:
        counts = batch.request_counts
        fields: dict[str, object] = {
            "status": batch.status.value,
            "counts": outcome_counts(counts),
            "cost": money(batch.cost.total),
        }
        if self._task is None:
            self._task = self._progress.add_task("batch", total=counts.total, **fields)  # type: ignore[arg-type]
        self._progress.update(self._task, completed=counts.done, **fields)  # type: ignore[arg-type]


def summary(batch: Batch) -> Table:
    title, rows = summary_rows(batch)
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for name, value in rows:
        table.add_row(name, value)
    return table


def batch_table(batches: list[Batch]) -> Table:
    rows = [
        [
            b.id,
            b.status.value,
            f"{b.request_counts.done}/{b.request_counts.total}",
            money(b.cost.total),
            dt.datetime.fromtimestamp(b.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            ",".join(b.providers),
        ]
        for b in batches
    ]
    return fitted_table(["id", "status", "done", "cost", "created", "providers"], rows)


def fitted_table(headers: Sequence[str], rows: Sequence[Sequence[str]], keep: int = 2) -> Table:
    """A table of whole values: the first `keep` columns (the id first) always, then as
    many of the others, in order, as fit the terminal. Rich would rather shorten every
    column, ids included, to `ubb_0…`, and an id that cannot be copied is of no use."""
    for shown in range(len(headers), keep - 1, -1):
        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for header in headers[:shown]:
            table.add_column(header, no_wrap=True)
        for row in rows:
            table.add_row(*row[:shown])
        if shown == keep or natural_width(table) <= out.width:
            break
    return table


def natural_width(table: Table) -> int:
    """The width the table takes with no column shortened (measured without a limit:
    rich caps a measurement at the terminal's width)."""
    return out.measure(table, options=out.options.update_width(10_000)).maximum


def print_table(table: Table) -> None:
    """Print whole even when the columns that are always kept are wider than the
    terminal: the terminal wraps the lines, nothing is cut."""
    width = natural_width(table)
    if width <= out.width:
        out.print(table)
    else:  # `print(width=...)` cannot go past the terminal's width; a wider console can
        Console(width=width).print(table)
