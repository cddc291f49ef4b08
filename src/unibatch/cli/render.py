"""How the CLI shows batches: progress bars, tables and summaries (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from unibatch.types import Batch, RequestCounts

console = Console(stderr=True)


def money(value: float) -> str:
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


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
        self._progress = Progress(
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
    counts, usage = batch.request_counts, batch.usage
    table = Table(title=f"batch {batch.id}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row("status", batch.status.value)
    table.add_row("providers", ", ".join(batch.providers) or "-")
    table.add_row("requests", str(counts.total))
    table.add_row("succeeded", str(counts.succeeded))
    table.add_row("errored", str(counts.errored))
    if counts.expired:
        table.add_row("expired", str(counts.expired))
    if counts.cancelled:
        table.add_row("cancelled", str(counts.cancelled))
    if counts.pending:
        table.add_row("pending", str(counts.pending))
    written = f", {usage.cache_write_tokens:,} cache writes" if usage.cache_write_tokens else ""
    table.add_row(
        "tokens",
        f"{usage.input_tokens:,} in ({usage.cached_tokens:,} cached{written}), "
        f"{usage.output_tokens:,} out ({usage.reasoning_tokens:,} reasoning)",
    )
    table.add_row("cost (batch prices)", money(batch.cost.total))
    for error in batch.errors[:5]:
        table.add_row("provider error", error)
    return table


def batch_table(batches: list[Batch]) -> Table:
    table = Table("id", "status", "requests", "done", "cost", "providers", "created")
    import datetime as dt

    for b in batches:
        created = dt.datetime.fromtimestamp(b.created_at).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            b.id,
            b.status.value,
            str(b.request_counts.total),
            str(b.request_counts.done),
            money(b.cost.total),
            ",".join(b.providers),
            created,
        )
    return table
