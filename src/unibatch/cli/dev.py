"""Running things: the emulators, the demo, the gateway, and the database schema."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import orjson
import typer

from unibatch import logs
from unibatch.cli.batches import wait_for, write_results
from unibatch.cli.common import EXIT_INPUT, DatabaseOpt, Format, async_command, error, run
from unibatch.cli.render import console, summary
from unibatch.client import AsyncClient
from unibatch.config import Settings
from unibatch.errors import UnibatchError

app = typer.Typer()
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)

DEMO_REQUESTS = Path(__file__).parents[1] / "examples" / "chat_requests.jsonl"


@app.command()
def emulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8600,
    time_scale: Annotated[float, typer.Option(help="Multiplies every batch phase.")] = 1.0,
    failure_rate: Annotated[float, typer.Option(help="Share of requests that fail.")] = 0.0,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where uploaded and result files go (default: temp).")
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

    config = EmulatorConfig(time_scale=time_scale, failure_rate=failure_rate, data_dir=data_dir)
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


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    no_worker: Annotated[
        bool,
        typer.Option("--no-worker", help="Serve only; run `unibatch worker` processes apart."),
    ] = False,
    database: DatabaseOpt = None,
) -> None:
    """Run the HTTP gateway: OpenAI-compatible /v1/files and /v1/batches for every provider,
    with virtual keys (UNIBATCH_MASTER_KEY manages them), budgets and usage. Docs at /docs."""
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


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("demo-results.jsonl"),
    database: DatabaseOpt = None,
) -> None:
    """Run a 200-request batch on the built-in OpenAI emulator: no key, no internet."""
    from unibatch.emulators import EmulatorConfig
    from unibatch.emulators.server import running_emulator

    # The emulator and the temporary database outlive the event loop, so nothing the
    # loop still finishes on its way out finds them gone.
    with tempfile.TemporaryDirectory() as tmp, running_emulator(EmulatorConfig()) as emu:
        env = {**os.environ, "OPENAI_API_KEY": "demo", "OPENAI_BASE_URL": emu.base_url("openai")}
        run(_demo(env, database or f"sqlite:///{tmp}/demo.db", output))


async def _demo(env: dict[str, str], database: str, output: Path) -> None:
    settings = Settings(database_url=database, poll_schedule=(0.5,))
    async with AsyncClient(settings=settings, env=env) as client:
        batch = await client.submit(DEMO_REQUESTS)
        console.print(
            f"submitted {batch.id}: {batch.request_counts.total} requests from {DEMO_REQUESTS.name}"
        )
        batch = await wait_for(client, batch.id, quiet=False)
        count = await write_results(client, batch.id, output, Format.openai)
        console.print(summary(batch))
        console.print(f"wrote {count} results to {output}")


@db_app.command("upgrade")
@async_command
async def db_upgrade(database: DatabaseOpt = None) -> None:
    """Create or migrate the database schema to the latest version."""
    from unibatch.store.db import open_store

    settings = Settings()
    store = await open_store(database or settings.database_url)
    await store.aclose()
    console.print("database is up to date")
