"""`unibatch webhooks`: endpoints told when batches end, and their deliveries."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from unibatch.cli.common import Command, DatabaseOpt, Group, JsonOpt, async_command
from unibatch.cli.render import console, fitted_table, print_table
from unibatch.cli.summary import print_json
from unibatch.errors import NotFoundError

if TYPE_CHECKING:
    from unibatch.engine import Engine

app = typer.Typer(
    cls=Group,
    help="Webhook endpoints (Standard Webhooks, signed) and their deliveries.",
    no_args_is_help=True,
)

EndpointArg = Annotated[
    str, typer.Argument(metavar="ENDPOINT_ID", help="The endpoint's id (we_...), as list shows.")
]


async def _engine(database: str | None) -> Engine:
    from unibatch.engine import Engine

    return await Engine.open(database)


def _when(value: float | None) -> str:
    return "" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def show_new_secret(row: dict[str, Any]) -> None:
    """Print a new endpoint's secret, the only time it is shown (stdout: for scripts)."""
    console.print(
        f"webhook endpoint [bold]{row['id']}[/bold] for {row['url']}; "
        "its signing secret is shown only once:",
        soft_wrap=True,
    )
    sys.stdout.write(str(row["secret"]) + "\n")


@app.command("add", cls=Command)
@async_command
async def webhooks_add(
    url: Annotated[str, typer.Argument(metavar="URL", help="Where events are POSTed.")],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            metavar="WHSEC",
            help="Signing secret ('whsec_' + base64); default: a fresh one, printed once.",
        ),
    ] = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register an endpoint told of every batch made without a gateway key.

    That is every batch of the CLI, the Python API and the gateway's master key. The
    secret is printed once."""
    engine = await _engine(database)
    try:
        row = await engine.store.add_endpoint(url, key_id=None, secret=secret, now=time.time())
    finally:
        await engine.aclose()
    if as_json:
        print_json({"id": row["id"], "url": row["url"], "secret": row["secret"]})
    else:
        show_new_secret(row)


@app.command("list", cls=Command)
@async_command
async def webhooks_list(
    batch_id: Annotated[
        str | None, typer.Option("--batch", metavar="BATCH_ID", help="Only this batch's events.")
    ] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", metavar="STATE", help="pending, delivered or failed."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Deliveries shown.")] = 50,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List endpoints (of every key) and the latest deliveries, newest first."""
    engine = await _engine(database)
    try:
        hooks = await engine.store.list_endpoints(None, every_key=True)
        sent = await engine.store.list_deliveries(batch_id=batch_id, state=state, limit=limit)
    finally:
        await engine.aclose()
    shown = ("id", "key_id", "url", "scope", "created_at")
    endpoints = [{k: row[k] for k in shown} for row in hooks]
    fields = ("id", "event_id", "type", "batch_id", "url", "state", "attempts")
    deliveries = [
        {k: row[k] for k in (*fields, "last_status", "last_error", "next_run_at", "delivered_at")}
        for row in sent
    ]
    if as_json:
        print_json({"endpoints": endpoints, "deliveries": deliveries})
        return
    print_table(
        fitted_table(
            ["endpoint", "key", "url", "scope", "created"],
            [
                [e["id"], e["key_id"] or "master", e["url"], e["scope"], _when(e["created_at"])]
                for e in endpoints
            ],
        )
    )
    print_table(
        fitted_table(
            ["delivery", "event", "type", "batch", "url", "state", "tries", "last"],
            [
                [
                    *(str(d[k]) for k in fields),
                    d["last_error"] or (str(d["last_status"]) if d["last_status"] else ""),
                ]
                for d in deliveries
            ],
        )
    )


@app.command("test", cls=Command)
@async_command
async def webhooks_test(
    endpoint_id: EndpointArg, database: DatabaseOpt = None, as_json: JsonOpt = False
) -> None:
    """Send a signed webhook.test event to an endpoint now and show how it answered.

    An event the endpoint did not take is retried later by workers."""
    engine = await _engine(database)
    try:
        event_id = await engine.store.send_test_event(endpoint_id, now=engine.ctx.clock())
        if event_id is None:
            raise NotFoundError(f"no webhook endpoint {endpoint_id!r}")
        # The event's subject is the endpoint: this round sends it and nothing else.
        await engine.run_once(batch_id=endpoint_id)
        rows = await engine.store.list_deliveries(batch_id=endpoint_id, limit=1)
    finally:
        await engine.aclose()
    row = rows[0]
    outcome = {k: row[k] for k in ("event_id", "state", "last_status", "last_error")}
    if as_json:
        print_json(outcome)
    elif row["state"] == "delivered":
        console.print(f"{event_id}: delivered (HTTP {row['last_status']})")
    else:
        console.print(f"{event_id}: not delivered ({row['last_error']}); workers retry it")
    if row["state"] != "delivered":
        raise typer.Exit(1)


@app.command("redeliver", cls=Command)
@async_command
async def webhooks_redeliver(
    ident: Annotated[
        str,
        typer.Argument(
            metavar="ID", help="An event (evt_...: to each endpoint) or one delivery (whd_...)."
        ),
    ],
    database: DatabaseOpt = None,
) -> None:
    """Queue an event again from the start of its retry schedule; workers send it."""
    engine = await _engine(database)
    try:
        queued = await engine.store.redeliver(ident, now=engine.ctx.clock())
    finally:
        await engine.aclose()
    if not queued:
        raise NotFoundError(f"no delivery of {ident!r} to queue (or one is being sent now)")
    console.print(f"queued {queued} delivery(ies) of {ident}")


@app.command("remove", cls=Command)
@async_command
async def webhooks_remove(endpoint_id: EndpointArg, database: DatabaseOpt = None) -> None:
    """Stop sending to an endpoint; its deliveries not yet made are dropped."""
    engine = await _engine(database)
    try:
        found = await engine.store.revoke_endpoint(
            endpoint_id, None, now=time.time(), every_key=True
        )
    finally:
        await engine.aclose()
    if not found:
        raise NotFoundError(f"no webhook endpoint {endpoint_id!r}")
    console.print(f"removed {endpoint_id}")
