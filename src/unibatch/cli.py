"""The `unibatch` command line.

Exit codes: 0 success; 1 a provider or runtime error; 2 bad input or configuration;
3 the batch ended failed, expired or cancelled; 4 no such batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Coroutine, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.markup import escape

from unibatch._cli_render import BatchProgress, batch_table, console, summary
from unibatch.client import AsyncClient
from unibatch.config import Settings
from unibatch.errors import (
    ConfigurationError,
    InputError,
    NotFoundError,
    UnibatchError,
    UnknownProviderError,
)
from unibatch.gateway.store import GatewayStore
from unibatch.store import Store
from unibatch.types import Batch, BatchStatus

EXIT_ERROR, EXIT_INPUT, EXIT_BATCH_FAILED, EXIT_NOT_FOUND = 1, 2, 3, 4
T = TypeVar("T")

app = typer.Typer(
    help="One Batch API for every LLM provider: submit, track and collect batches.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
keys_app = typer.Typer(
    help="Virtual keys of the gateway (works directly on the database).", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


class Format(StrEnum):
    openai = "openai"
    unified = "unified"


DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (sqlite:///PATH or postgresql://...). "
        "Default: UNIBATCH_DATABASE_URL, else a SQLite file in the user data directory.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
FormatOpt = Annotated[
    Format, typer.Option("--format", help="openai: OpenAI batch output lines; unified: ours.")
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write results here (JSONL).")
]


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command; our errors become one red line and a meaningful exit code."""
    try:
        return asyncio.run(coro)
    except NotFoundError as exc:
        _error(exc)
        raise typer.Exit(EXIT_NOT_FOUND) from None
    except (InputError, ConfigurationError, UnknownProviderError) as exc:
        _error(exc)
        raise typer.Exit(EXIT_INPUT) from None
    except (UnibatchError, TimeoutError) as exc:
        _error(exc)
        raise typer.Exit(EXIT_ERROR) from None


def _error(exc: BaseException) -> None:
    # Unwrapped and unstyled, so the file:line of a message stays greppable.
    console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, highlight=False)


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _client(database: str | None, env: Mapping[str, str] | None = None) -> AsyncClient:
    return AsyncClient(database, env=env)


async def _write_results(
    client: AsyncClient, batch_id: str, output: Path | None, fmt: Format
) -> int:
    def encode(result: Any) -> bytes:
        data = result.as_openai(batch_id) if fmt is Format.openai else result.as_unified()
        return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)

    count = 0
    if output is None:
        async for result in client.results(batch_id):
            sys.stdout.buffer.write(encode(result))
            count += 1
        sys.stdout.flush()
        return count
    # Written to a temporary name first so a crash never leaves a half file behind.
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as handle:
        async for result in client.results(batch_id):
            handle.write(encode(result))
            count += 1
    partial.replace(output)
    return count


async def _wait(client: AsyncClient, batch_id: str, quiet: bool) -> Batch:
    if quiet:
        return await client.wait(batch_id)
    with BatchProgress() as bar:
        return await client.wait(batch_id, on_progress=bar.update)


async def _wait_and_report(
    client: AsyncClient, batch_id: str, output: Path | None, fmt: Format, as_json: bool
) -> None:
    """Drive to the end, write the results if asked, summarise, exit by the outcome."""
    batch = await _wait(client, batch_id, as_json)
    if output is not None:
        await _write_results(client, batch.id, output, fmt)
    _finish(batch, as_json)
    _exit_for(batch)


def _exit_for(batch: Batch) -> None:
    if batch.status in (BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED):
        raise typer.Exit(EXIT_BATCH_FAILED)


def _finish(batch: Batch, as_json: bool) -> None:
    if as_json:
        _print_json(batch.as_dict())
    else:
        console.print(summary(batch))


def _parse_metadata(pairs: list[str]) -> dict[str, str]:
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--metadata {pair!r} must be KEY=VALUE")
        metadata[key] = value
    return metadata


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="Requests, one JSON object per line.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="provider/model for every line, e.g. openai/gpt-4o-mini"
        ),
    ] = None,
    metadata: Annotated[
        list[str] | None, typer.Option("--metadata", help="KEY=VALUE, repeatable.")
    ] = None,
    on_complete: Annotated[
        str | None, typer.Option(help="Call module:function once the results are in.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Stay until the batch ends.")] = False,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate FILE, store it as a batch and hand it to the workers (or run it with --wait)."""

    async def main() -> None:
        async with _client(database) as client:
            batch = await client.submit(
                file,
                model=model,
                metadata=_parse_metadata(metadata or []),
                on_complete=on_complete,
            )
            if not wait:
                if as_json:
                    _print_json(batch.as_dict())
                else:
                    console.print(
                        f"submitted [bold]{batch.id}[/bold] ({batch.request_counts.total} requests)"
                    )
                    sys.stdout.write(batch.id + "\n")
                return
            await _wait_and_report(client, batch.id, output, fmt, as_json)

    _run(main())


@app.command()
def status(batch_id: str, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Show one batch: status, request counts, tokens and cost."""

    async def main() -> None:
        async with _client(database) as client:
            _finish(await client.get(batch_id), as_json)

    _run(main())


@app.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="Only batches in this status.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List batches, newest first."""

    async def main() -> None:
        async with _client(database) as client:
            batches = await client.list(status=status, limit=limit)
            if as_json:
                _print_json([b.as_dict() for b in batches])
            else:
                console.print(batch_table(batches))

    _run(main())


@app.command()
def results(
    batch_id: str,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    database: DatabaseOpt = None,
) -> None:
    """Write a batch's results (to stdout without -o), in input order."""

    async def main() -> None:
        async with _client(database) as client:
            await client.get(batch_id)
            count = await _write_results(client, batch_id, output, fmt)
            if output is not None:
                console.print(f"wrote {count} results to {output}")

    _run(main())


@app.command("wait")
def wait_(
    batch_id: str,
    output: OutputOpt = None,
    fmt: FormatOpt = Format.openai,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Wait for a batch to end, driving it in this process (alongside any workers)."""

    async def main() -> None:
        async with _client(database) as client:
            await _wait_and_report(client, batch_id, output, fmt, as_json)

    _run(main())


@app.command()
def cancel(batch_id: str, database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a batch. Results that finished before the cancel are kept."""

    async def main() -> None:
        async with _client(database) as client:
            _finish(await client.cancel(batch_id), as_json)

    _run(main())


@app.command()
def worker(
    database: DatabaseOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Process due work (submit, poll, ingest, finalize, notify) until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with _client(database) as client:
            engine = await client.engine()
            console.print(f"worker {engine.owner} on {engine.settings.database_url}")
            await engine.run_worker(stop)

    _run(main())


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
        _error(exc)
        raise typer.Exit(EXIT_INPUT) from None
    serve_emulators(host, port, config)


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

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    if database:
        settings = settings.model_copy(update={"database_url": database})
    try:
        run_server(host, port, settings=settings, worker=not no_worker)
    except UnibatchError as exc:
        _error(exc)
        raise typer.Exit(EXIT_INPUT) from None


async def _key_store(database: str | None) -> tuple[Store, GatewayStore]:
    from unibatch.store.db import open_store

    store = await open_store(database or Settings().database_url)
    return store, GatewayStore(store.engine)


@keys_app.command("create")
def keys_create(
    name: str,
    max_budget: Annotated[
        float | None, typer.Option(help="USD at batch prices this key may spend.", min=0)
    ] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a virtual key. The key is printed once; only its hash is stored."""
    from unibatch.gateway.keys import create_key

    async def main() -> None:
        store, keys = await _key_store(database)
        try:
            created = await create_key(keys, name, max_budget)
        finally:
            await store.aclose()
        if as_json:
            _print_json(created.model_dump())
            return
        console.print(f"created key [bold]{created.id}[/bold] ({name}); it is shown only once:")
        sys.stdout.write(created.key + "\n")

    _run(main())


@keys_app.command("list")
def keys_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List virtual keys with their budget, spend and reservations."""
    from rich.table import Table

    from unibatch.gateway.keys import key_object

    async def main() -> None:
        store, keys = await _key_store(database)
        try:
            rows = [await key_object(keys, row) for row in await keys.list_keys()]
        finally:
            await store.aclose()
        if as_json:
            _print_json([row.model_dump() for row in rows])
            return
        table = Table("id", "name", "key", "budget", "spent", "reserved", "revoked")
        for row in rows:
            budget = "-" if row.max_budget is None else f"${row.max_budget:.4f}"
            table.add_row(
                row.id,
                row.name,
                row.key_hint,
                budget,
                f"${row.spent:.4f}",
                f"${row.reserved:.4f}",
                "yes" if row.revoked_at else "",
            )
        console.print(table)

    _run(main())


@keys_app.command("revoke")
def keys_revoke(key_id: str, database: DatabaseOpt = None) -> None:
    """Revoke a key: the gateway answers it 401 from now on. Its batches keep running."""

    async def main() -> None:
        store, keys = await _key_store(database)
        try:
            found = await keys.revoke_key(key_id, time.time())
        finally:
            await store.aclose()
        if not found:
            raise NotFoundError(f"no key {key_id!r}")
        console.print(f"revoked {key_id}")

    _run(main())


DEMO_REQUESTS = Path(__file__).parent / "examples" / "chat_requests.jsonl"


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o")] = Path("demo-results.jsonl"),
    database: DatabaseOpt = None,
) -> None:
    """Run a 200-request batch on the built-in OpenAI emulator: no key, no internet."""
    from unibatch.emulators import EmulatorConfig
    from unibatch.emulators.server import running_emulator

    async def main(env: dict[str, str], db: str) -> None:
        settings = Settings(database_url=db, poll_schedule=(0.5,))
        async with AsyncClient(settings=settings, env=env) as client:
            batch = await client.submit(DEMO_REQUESTS)
            console.print(
                f"submitted {batch.id}: {batch.request_counts.total} requests "
                f"from {DEMO_REQUESTS.name}"
            )
            batch = await _wait(client, batch.id, quiet=False)
            count = await _write_results(client, batch.id, output, Format.openai)
            console.print(summary(batch))
            console.print(f"wrote {count} results to {output}")

    with tempfile.TemporaryDirectory() as tmp, running_emulator(EmulatorConfig()) as emu:
        env = {**os.environ, "OPENAI_API_KEY": "demo", "OPENAI_BASE_URL": emu.base_url("openai")}
        _run(main(env, database or f"sqlite:///{tmp}/demo.db"))


@db_app.command("upgrade")
def db_upgrade(database: DatabaseOpt = None) -> None:
    """Create or migrate the database schema to the latest version."""
    from unibatch.store.db import open_store

    async def main() -> None:
        settings = Settings()
        store = await open_store(database or settings.database_url)
        await store.aclose()
        console.print("database is up to date")

    _run(main())
