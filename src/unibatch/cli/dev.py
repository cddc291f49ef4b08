"""Running things: the emulators, the demo, the gateway, and the database schema."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import orjson
import platformdirs
import typer

from unibatch import logs
from unibatch.cli.batches import wait_for, write_results
from unibatch.cli.common import (
    EXIT_INPUT,
    Command,
    DatabaseOpt,
    Format,
    Group,
    async_command,
    error,
    run,
    writable_output,
)
from unibatch.cli.render import console, summary
from unibatch.errors import UnibatchError

app = typer.Typer(cls=Group)
db_app = typer.Typer(cls=Group, help="Database maintenance.", no_args_is_help=True)

DEMO_REQUESTS = Path(__file__).parents[1] / "examples" / "chat_requests.jsonl"
# Next to the default database, not in the working directory: a first try of the tool
# should not leave a file in the user's project.
DEMO_OUTPUT = Path(platformdirs.user_data_dir("unibatch")) / "demo-results.jsonl"


@app.command(cls=Command)
def emulate(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", metavar="PORT", help="Port (0 picks a free one).")
    ] = 8600,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale",
            metavar="X",
            help="Multiplies every batch phase (0.1: ten times faster).",
        ),
    ] = 1.0,
    failure_rate: Annotated[
        float,
        typer.Option("--failure-rate", metavar="R", help="Share of requests that fail, 0 to 1."),
    ] = 0.0,
    retryable_failure_rate: Annotated[
        float,
        typer.Option(
            "--retryable-failure-rate",
            metavar="R",
            help="Share of requests that fail with a retryable server error on each attempt, "
            "drawn afresh per attempt, so retries can succeed; 0 to 1.",
        ),
    ] = 0.0,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Where uploaded and result files go (default: a temporary directory).",
        ),
    ] = None,
    knobs: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KNOB=VALUE",
            help="Any emulator knob, value as JSON, e.g. --set fault_rate=0.1 (repeatable).",
        ),
    ] = None,
) -> None:
    """Run the provider emulators; prints one NAME=value line per provider."""
    from unibatch.emulators import EmulatorConfig
    from unibatch.emulators.server import serve as serve_emulators

    config = EmulatorConfig(
        time_scale=time_scale,
        failure_rate=failure_rate,
        retryable_failure_rate=retryable_failure_rate,
        data_dir=data_dir,
    )
    try:
        config.update(
            {k: orjson.loads(v) for k, _, v in (item.partition("=") for item in knobs or [])}
        )
    except ValueError as exc:
        error(exc)
        raise typer.Exit(EXIT_INPUT) from None
    try:
        logs.setup("WARNING")
        serve_emulators(host, port, config)
    except UnibatchError as exc:
        error(exc)
        raise typer.Exit(EXIT_INPUT) from None


@app.command(cls=Command)
def serve(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Interface to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", help="Port.")] = 8000,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Serve only; run `unibatch worker` processes apart."),
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Run the HTTP gateway: OpenAI-compatible /v1/files and /v1/batches for every provider,
    with virtual keys (UNIBATCH_MASTER_KEY manages them), budgets and usage. Docs at /docs."""
    from unibatch.config import Settings
    from unibatch.gateway.serve import serve as run_server

    settings = Settings()
    if database:
        settings = settings.model_copy(update={"database_url": database})
    try:
        level = logs.setup("INFO")
        run_server(host, port, settings=settings, worker=not no_worker, log_level=level.lower())
    except UnibatchError as exc:
        error(exc)
        raise typer.Exit(EXIT_INPUT) from None


@app.command(cls=Command)
def demo(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help=f"Write the results here (JSONL). Default: {DEMO_OUTPUT}",
            show_default=False,
            # Its own default folder is made when needed.
            callback=lambda v: v if v == DEMO_OUTPUT else writable_output(v),
        ),
    ] = DEMO_OUTPUT,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            metavar="URL",
            help="Keep the demo's batch in this database. Default: a temporary SQLite "
            "database, deleted when the demo ends (UNIBATCH_DATABASE_URL is not used).",
        ),
    ] = None,
) -> None:
    """Run a 200-request batch on the built-in OpenAI emulator: no key, no internet.
    The batch lives in a temporary database unless --database names one; the results
    are written to --output, and the path is printed."""
    from unibatch.emulators import EmulatorConfig
    from unibatch.emulators.server import running_emulator

    output = output.expanduser().resolve()
    if output == DEMO_OUTPUT:
        output.parent.mkdir(parents=True, exist_ok=True)
    # The emulator and the temporary database outlive the event loop, so nothing the
    # loop still finishes on its way out finds them gone.
    with tempfile.TemporaryDirectory() as tmp, running_emulator(EmulatorConfig()) as emu:
        env = {**os.environ, "OPENAI_API_KEY": "demo", "OPENAI_BASE_URL": emu.base_url("openai")}
        run(_demo(env, database or f"sqlite:///{tmp}/demo.db", output))
    if database is None:
        console.print(
            "the batch was kept in a temporary database, now deleted (--database URL keeps it)",
            soft_wrap=True,
        )


async def _demo(env: dict[str, str], database: str, output: Path) -> None:
    from unibatch.client import AsyncClient
    from unibatch.config import Settings

    settings = Settings(database_url=database, poll_schedule=(0.5,))
    async with AsyncClient(settings=settings, env=env) as client:
        batch = await client.submit(DEMO_REQUESTS)
        console.print(
            f"submitted {batch.id}: {batch.request_counts.total} requests from {DEMO_REQUESTS.name}"
        )
        batch = await wait_for(client, batch.id, quiet=False)
        count = await write_results((await client.engine()).store, batch.id, output, Format.openai)
        console.print(summary(batch))
        console.print(f"wrote {count} results to {output}")


@db_app.command("upgrade", cls=Command)
@async_command
async def db_upgrade(database: DatabaseOpt = None) -> None:
    """Create or migrate the database schema to the latest version."""
    from unibatch.dburl import database_url
    from unibatch.store.db import open_store

    store = await open_store(database_url(database))
    await store.aclose()
    console.print("database is up to date")
