"""`unibatch estimate`: what a file would cost, per model, before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from unibatch.cli.common import (
    CacheTtlOpt,
    Command,
    Group,
    JsonOpt,
    async_command,
    parse_duration,
)
from unibatch.cli.render import console, fitted_table, print_table
from unibatch.cli.summary import money, print_json

if TYPE_CHECKING:
    from unibatch.estimate import Estimate

app = typer.Typer(cls=Group)


def _cost(value: float | None) -> str:
    return "unknown" if value is None else money(value)


def estimate_table(result: Estimate) -> list[list[str]]:
    """One row per model: the cheapest (at batch prices) marked with a star."""
    return [
        [
            ("* " if m.cheapest else "") + m.model,
            f"{m.requests:,}",
            f"{m.refused:,}",
            f"{m.input_tokens:,}",
            f"{m.output_tokens:,}",
            _cost(m.batch_cost),
            _cost(m.list_cost),
        ]
        for m in result.models
    ]


@app.command(cls=Command)
@async_command
async def estimate(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", help="Requests, one JSON object per line, as for submit."),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="PROVIDER/MODEL",
            help="Price every line on this model instead of its own; repeat to compare "
            "several side by side.",
        ),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache",
            help="Also count the requests `submit --cache` would answer from the store "
            "(reads the database).",
        ),
    ] = False,
    cache_ttl: CacheTtlOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Count FILE's tokens and price it per model, at batch and at list prices. Sends
    nothing. Output tokens are each request's limit (max_tokens, ...), else 4096."""
    from unibatch.client import AsyncClient

    if cache_ttl is not None and not cache:
        raise typer.BadParameter("needs --cache", param_hint="--cache-ttl")
    ttl = parse_duration(cache_ttl, "--cache-ttl")
    # Without --cache the estimate opens no database (the client opens it on first use).
    client = AsyncClient()
    try:
        result = await client.estimate(file, models=model or (), cache=cache, cache_ttl=ttl)
    finally:
        await client.aclose()
    if as_json:
        print_json(result.as_dict())
        return
    headers = ["model", "requests", "refused", "input tokens", "output max", "batch", "list"]
    rows = estimate_table(result)
    if cache:
        headers.insert(3, "cached")
        for row, m in zip(rows, result.models, strict=True):
            row.insert(3, f"{m.cached:,}")
    print_table(fitted_table(headers, rows, keep=len(headers)))
    for m in result.models:
        if m.refusal:
            console.print(f"{m.model} refuses {m.refused:,} line(s), first: {m.refusal}")
        if m.batch_cost is None:
            console.print(f"{m.model}: no known price (set one in UNIBATCH_PRICES)")
    if any(m.cheapest for m in result.models):
        console.print("* cheapest at batch prices among the models that take every line")
