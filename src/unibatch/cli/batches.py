"""Batch commands: submit, status, list, results, wait, cancel, and the worker.

Each command imports the engine, the store or the client when it runs: loading them all
for every command would make `unibatch --help` take over a second."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from unibatch import logs
from unibatch.cli.common import (
    EXIT_BATCH_FAILED,
    EXIT_NOT_FINISHED,
    BatchIdArg,
    Command,
    DatabaseOpt,
    Format,
    FormatOpt,
    Group,
    JsonOpt,
    OutputOpt,
    async_command,
    error,
    print_json,
)
from unibatch.cli.render import BatchProgress, batch_table, console, print_table, summary
from unibatch.dburl import database_url
from unibatch.errors import InputError
from unibatch.types import Batch, BatchStatus

if TYPE_CHECKING:
    from unibatch.client import AsyncClient
    from unibatch.store import Store

app = typer.Typer(cls=Group)


async def write_results(store: Store, batch_id: str, output: Path | None, fmt: Format) -> int:
    """Write a batch's results to `output` (stdout when None); returns how many."""
    from unibatch.engine.export import result_lines, write_lines

    lines = result_lines(store, batch_id, "openai" if fmt is Format.openai else "unified")
    if output is None:
        count = await write_lines(lines, sys.stdout.buffer)
        sys.stdout.flush()
        return count
    # Written to a temporary name first so a crash never leaves a half file behind.
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as handle:
        count = await write_lines(lines, handle)
    partial.replace(output)
    return count


async def wait_for(client: AsyncClient, batch_id: str, quiet: bool) -> Batch:
    """Drive a batch to its end, with a progress bar on stderr unless `quiet`."""
    if quiet:
        return await client.wait(batch_id)
    with BatchProgress() as bar:
        return await client.wait(batch_id, on_progress=bar.update)


async def _wait_and_report(
    client: AsyncClient, batch_id: str, output: Path | None, fmt: Format, as_json: bool
) -> None:
    """Drive to the end, write the results if asked, summarise, exit by the outcome."""
    batch = await wait_for(client, batch_id, as_json)
    if output is not None:
        await write_results((await client.engine()).store, batch.id, output, fmt)
    _finish(batch, as_json)
    _exit_for(batch)


def _exit_for(batch: Batch) -> None:
    if batch.status in (BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED):
        raise typer.Exit(EXIT_BATCH_FAILED)


def _finish(batch: Batch, as_json: bool) -> None:
    if as_json:
        print_json(batch.as_dict())
    else:
        print_table(summary(batch))


def _parse_metadata(pairs: list[str]) -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--metadata {pair!r} must be KEY=VALUE")
        metadata[key] = value
    return metadata


@app.command(cls=Command)
@async_command
async def submit(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="Requests, one JSON object per line (OpenAI batch lines or "
            '{"custom_id", "body"}).',
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="PROVIDER/MODEL",
            help="The model of every line (fills in or overrides body.model), "
            "e.g. openai/gpt-4o-mini.",
        ),
    ] = None,
    metadata: Annotated[
        list[str] | None,
        typer.Option(
            "--metadata", metavar="KEY=VALUE", help="A label kept with the batch; repeatable."
        ),
    ] = None,
    on_complete: Annotated[
        str | None,
        typer.Option(
            "--on-complete",
            metavar="MODULE:FUNCTION",
            help="A Python function called with the finished batch once its results are in.",
        ),
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Send the batch and follow it here, with a progress bar, until it ends.",
        ),
    ] = False,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate FILE, store it as a batch and hand it to the workers (or run it with --wait)."""
    from unibatch.client import AsyncClient

    async with AsyncClient(database) as client:
        batch = await client.submit(
            file,
            model=model,
            metadata=_parse_metadata(metadata or []),
            on_complete=on_complete,
        )
        if not wait:
            if as_json:
                print_json(batch.as_dict())
            else:
                console.print(
                    f"submitted [bold]{batch.id}[/bold] ({batch.request_counts.total} requests)"
                )
                sys.stdout.write(batch.id + "\n")
            return
        # The id comes first: an interrupted wait leaves the batch running, not lost.
        console.print(
            f"submitted [bold]{batch.id}[/bold] ({batch.request_counts.total} requests); "
            f"waiting. Ctrl-C stops waiting, not the batch: resume with "
            f"[bold]unibatch wait {batch.id}[/bold]",
            soft_wrap=True,
        )
        await _wait_and_report(client, batch.id, output, fmt, as_json)


@app.command(cls=Command)
@async_command
async def status(
    batch_id: BatchIdArg, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one batch: status, request counts, tokens and cost."""
    # Straight from the store, the same view `Engine.get_batch` gives: the engine would
    # load the providers, pricing and HTTP clients, which showing a batch does not need.
    from unibatch.engine.views import batch_view
    from unibatch.store.db import open_store

    store = await open_store(database_url(database))
    try:
        batch = await batch_view(store, batch_id)
    finally:
        await store.aclose()
    _finish(batch, as_json)


@app.command("list", cls=Command)
@async_command
async def list_(
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS",
            help="Only batches in this status: " + ", ".join(s.value for s in BatchStatus) + ".",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", help="At most this many, newest first.")
    ] = 50,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List batches, newest first."""
    # From the store, as `status`.
    from unibatch.engine.views import list_views
    from unibatch.store.db import open_store

    store = await open_store(database_url(database))
    try:
        batches = await list_views(store, status=status, limit=limit)
    finally:
        await store.aclose()
    if as_json:
        print_json([b.as_dict() for b in batches])
    else:
        print_table(batch_table(batches))


@app.command(cls=Command)
@async_command
async def results(
    batch_id: BatchIdArg,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    partial: Annotated[
        bool, typer.Option("--partial", help="Write the results landed so far of a running batch.")
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Write a batch's results (to stdout without -o), in input order. A batch that has
    not ended is refused (exit code 5) unless --partial asks for what landed so far."""
    # From the store, as `status`: writing stored rows out needs no providers or pricing.
    from unibatch.engine.views import batch_view
    from unibatch.store.db import open_store

    store = await open_store(database_url(database))
    try:
        batch = await batch_view(store, batch_id)
        if not batch.status.terminal and not partial:
            error(
                f"batch {batch_id} is {batch.status.value}: its results are not all in yet; "
                f"wait for it (unibatch wait {batch_id}) or pass --partial"
            )
            raise typer.Exit(EXIT_NOT_FINISHED)
        count = await write_results(store, batch_id, output, fmt)
    finally:
        await store.aclose()
    if output is not None:
        console.print(f"wrote {count} results to {output}")


@app.command("wait", cls=Command)
@async_command
async def wait_(
    batch_id: BatchIdArg,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait for a batch to end, driving it in this process (alongside any workers)."""
    from unibatch.client import AsyncClient

    async with AsyncClient(database) as client:
        await _wait_and_report(client, batch_id, output, fmt, as_json)


@app.command(cls=Command)
@async_command
async def cancel(
    batch_id: BatchIdArg, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """Cancel a batch. Results that finished before the cancel are kept."""
    from unibatch.client import AsyncClient

    async with AsyncClient(database) as client:
        _finish(await client.cancel(batch_id), as_json)


@app.command(cls=Command)
@async_command
async def worker(
    database: DatabaseOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the worker does, not only warnings.")
    ] = False,
) -> None:
    """Process due work (submit, poll, ingest, finalize, notify) until SIGINT or SIGTERM."""
    from sqlalchemy.engine import make_url

    from unibatch.client import AsyncClient

    logs.setup("INFO" if verbose else "WARNING")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncClient(database) as client:
        engine = await client.engine()
        where = make_url(engine.settings.database_url).render_as_string(hide_password=True)
        console.print(f"worker {engine.owner} on {where}")
        await engine.run_worker(stop)
