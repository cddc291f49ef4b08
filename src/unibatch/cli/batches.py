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
    EXIT_INPUT,
    EXIT_NOT_FINISHED,
    BatchIdArg,
    CacheTtlOpt,
    Command,
    DatabaseOpt,
    Format,
    FormatOpt,
    Group,
    JsonOpt,
    OutputOpt,
    async_command,
    error,
    parse_deadline_option,
    parse_duration,
)
from unibatch.cli.render import BatchProgress, batch_table, console, print_table, summary
from unibatch.cli.summary import print_json
from unibatch.dburl import database_url
from unibatch.errors import InputError
from unibatch.types import Batch, BatchStatus

if TYPE_CHECKING:
    from unibatch.client import AsyncClient
    from unibatch.engine.export import ResultRows

app = typer.Typer(cls=Group)


async def write_results(source: ResultRows, batch_id: str, output: Path | None, fmt: Format) -> int:
    """Write a batch's results to `output` (stdout when None); returns how many."""
    from unibatch.engine.export import write_results

    return await write_results(
        source, batch_id, output, "openai" if fmt is Format.openai else "unified"
    )


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
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            metavar="N",
            min=1,
            help="Times a request that fails in a retryable way (rate limit, server error, "
            "expiry) is sent in all, in follow-up jobs of the batch; 1 turns retries off. "
            "Default 3 (UNIBATCH_MAX_ATTEMPTS).",
        ),
    ] = None,
    fallback_model: Annotated[
        list[str] | None,
        typer.Option(
            "--fallback-model",
            metavar="PROVIDER/MODEL",
            help="Where the unfinished requests of a provider batch that fails or is stuck "
            "go, through that provider's Batch API; repeatable or comma-separated, tried "
            "in order.",
        ),
    ] = None,
    stuck_after: Annotated[
        str | None,
        typer.Option(
            "--stuck-after",
            metavar="DURATION",
            help="How long a provider batch may stay validating or in progress before it "
            "is cancelled and its requests fail over (e.g. 90m, 6h). Default 6h; needs "
            "--fallback-model.",
        ),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache",
            help="Answer from the store every request whose provider, model, endpoint and "
            "body (key order and whitespace aside) match one that already succeeded: "
            "not sent, marked cached, cost 0.",
        ),
    ] = False,
    cache_ttl: CacheTtlOpt = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            "--deadline",
            metavar="WHEN",
            help="When the batch must have ended: a duration from now (2h, 90m) or an ISO "
            "8601 time with its timezone (2026-12-01T09:00:00Z). In time for it, the "
            "provider batch is cancelled, what finished is kept, and the rest runs "
            "through the real-time endpoint at list price.",
        ),
    ] = None,
    webhook: Annotated[
        str | None,
        typer.Option(
            "--webhook",
            metavar="URL",
            help="POST signed events (Standard Webhooks) to URL when the batch ends or is "
            "retried. A URL not yet registered is registered with UNIBATCH_WEBHOOK_SECRET, "
            "else a fresh secret printed once.",
        ),
    ] = None,
    max_cost: Annotated[
        float | None,
        typer.Option(
            "--max-cost",
            metavar="USD",
            min=0,
            help="Refuse the batch, sending nothing, if its estimate at batch prices (see "
            "`unibatch estimate`) is over this; cancel it, keeping finished results, once "
            "what it cost plus the estimate of the rest passes it.",
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

    if cache_ttl is not None and not cache:
        raise typer.BadParameter("needs --cache", param_hint="--cache-ttl")
    ttl = parse_duration(cache_ttl, "--cache-ttl")
    async with AsyncClient(database) as client:
        if webhook is not None:
            await _register_webhook(client, webhook)
        batch = await client.submit(
            file,
            model=model,
            metadata=_parse_metadata(metadata or []),
            on_complete=on_complete,
            max_attempts=max_attempts,
            fallback_models=[
                m.strip() for given in fallback_model or [] for m in given.split(",") if m.strip()
            ],
            stuck_after=parse_duration(stuck_after),
            cache=cache,
            cache_ttl=ttl,
            deadline=parse_deadline_option(deadline),
            webhook=webhook,
            max_cost=max_cost,
        )
        counted = f"{batch.request_counts.total} requests"
        if cache:
            counted += f", {batch.cached} answered from the cache"
        if not wait:
            if as_json:
                print_json(batch.as_dict())
            else:
                console.print(f"submitted [bold]{batch.id}[/bold] ({counted})")
                sys.stdout.write(batch.id + "\n")
            return
        # The id comes first: an interrupted wait leaves the batch running, not lost.
        console.print(
            f"submitted [bold]{batch.id}[/bold] ({counted}); "
            f"waiting. Ctrl-C stops waiting, not the batch: resume with "
            f"[bold]unibatch wait {batch.id}[/bold]",
            soft_wrap=True,
        )
        await _wait_and_report(client, batch.id, output, fmt, as_json)


async def _register_webhook(client: AsyncClient, url: str) -> None:
    """Register `url` if it is new, with a fresh secret shown now (or the configured one)."""
    from unibatch.cli.webhooks import show_new_secret
    from unibatch.store.webhooks import new_secret

    engine = await client.engine()
    configured = engine.settings.webhook_secret
    _, created = await engine.webhook_targets(url, new_secret=configured or new_secret())
    if created is not None and not configured:
        show_new_secret(created)


@app.command(cls=Command)
@async_command
async def status(
    batch_id: BatchIdArg, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """Show one batch: status, request counts, tokens and cost."""
    from unibatch.cli.quick import show_status

    if show_status(batch_id, database, as_json):  # SQLite, read without SQLAlchemy
        return
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
    from unibatch.cli.quick import show_list

    if show_list(status, limit, database, as_json):  # SQLite, read without SQLAlchemy
        return
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
    from unibatch.cli.quick import export_results

    count = await export_results(batch_id, output, fmt.value, partial, database)
    if count is not None:  # SQLite, read without SQLAlchemy
        if output is not None:
            console.print(f"wrote {count} results to {output}")
        return
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
async def retry(
    batch_id: BatchIdArg,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            metavar="STATUS[,STATUS]",
            help="Which requests to send again, by result: errored, expired, cancelled "
            "(default: all three).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="PROVIDER/MODEL",
            help="Send them to this model instead (its rules apply; a request they refuse "
            "stays as it was).",
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            "--max-attempts",
            metavar="N",
            min=1,
            help="Attempts each re-run request gets from here, retries included (default 3).",
        ),
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the batch here until it ends again.")
    ] = False,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the failed or unfinished requests of an ended batch again, into the same batch:
    its results then hold the final answer per custom_id."""
    from unibatch.client import AsyncClient

    statuses = [s for s in (status or "").replace(" ", "").split(",") if s]
    async with AsyncClient(database) as client:
        outcome = await client.retry(
            batch_id, statuses=statuses or None, model=model, max_attempts=max_attempts
        )
        for refused in outcome.refused:
            error(f"{refused.custom_id}: not retried: {refused.message}")
        if not outcome.retried:
            if not outcome.refused:
                console.print(f"batch {batch_id}: no request to retry")
                return
            raise typer.Exit(EXIT_INPUT)
        console.print(
            f"retrying [bold]{outcome.retried}[/bold] requests of [bold]{batch_id}[/bold]"
            + (f" on {model}" if model else "")
            + (f"; {len(outcome.refused)} refused" if outcome.refused else "")
        )
        if wait:
            await _wait_and_report(client, batch_id, output, fmt, as_json)
        elif as_json:
            print_json((await client.get(batch_id)).as_dict())


@app.command(cls=Command)
@async_command
async def worker(
    database: DatabaseOpt = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the worker does, not only warnings.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            metavar="PORT",
            help="Serve Prometheus metrics at http://HOST:PORT/metrics (no key asked).",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", metavar="HOST", help="Interface for --metrics-port.")
    ] = "127.0.0.1",
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
        if metrics_port is None:
            await engine.run_worker(stop)
            return
        from unibatch.metrics.serve import metrics_server

        async with metrics_server(engine.store, metrics_host, metrics_port) as port:
            console.print(f"metrics on http://{metrics_host}:{port}/metrics")
            await engine.run_worker(stop)
