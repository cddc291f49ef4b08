"""`unibatch keys`: the gateway's virtual keys, managed directly on the database."""

from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from unibatch.cli.common import (
    CacheTtlOpt,
    Command,
    DatabaseOpt,
    Group,
    JsonOpt,
    async_command,
    parse_duration,
)
from unibatch.cli.render import console, fitted_table, print_table
from unibatch.cli.summary import print_json
from unibatch.dburl import database_url
from unibatch.errors import NotFoundError

if TYPE_CHECKING:
    from unibatch.gateway.store import GatewayStore
    from unibatch.store import Store

app = typer.Typer(
    cls=Group,
    help="Virtual keys of the gateway (works directly on the database).",
    no_args_is_help=True,
)


async def _key_store(database: str | None) -> tuple[Store, GatewayStore]:
    from unibatch.gateway.store import GatewayStore
    from unibatch.store.db import open_store

    store = await open_store(database_url(database))
    return store, GatewayStore(store.engine)


def _finite_budget(value: float | None) -> float | None:
    # Click's float type takes "inf" and "nan"; neither is an amount of money.
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"must be a finite amount of USD, at least 0, not {value!r}")
    return value


@app.command("create", cls=Command)
@async_command
async def keys_create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="A name to know the key by, e.g. a team.")
    ],
    max_budget: Annotated[
        float | None,
        typer.Option(
            "--max-budget",
            metavar="USD",
            help="USD at batch prices this key may spend (default: no limit).",
            callback=_finite_budget,
        ),
    ] = None,
    cache: Annotated[
        bool,
        typer.Option(
            "--cache",
            help="Use the result cache for this key's batches unless a batch says "
            "otherwise (answers are never shared between keys).",
        ),
    ] = False,
    cache_ttl: CacheTtlOpt = None,
    database: DatabaseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a virtual key. The key is printed once; only its hash is stored."""
    from unibatch.gateway.keys import create_key

    store, keys = await _key_store(database)
    try:
        created = await create_key(
            keys, name, max_budget, cache=cache, cache_ttl=parse_duration(cache_ttl, "--cache-ttl")
        )
    finally:
        await store.aclose()
    if as_json:
        print_json(created.model_dump())
        return
    console.print(f"created key [bold]{created.id}[/bold] ({name}); it is shown only once:")
    sys.stdout.write(created.key + "\n")


@app.command("list", cls=Command)
@async_command
async def keys_list(database: DatabaseOpt = None, as_json: JsonOpt = False) -> None:
    """List virtual keys with their budget, spend and reservations."""
    from unibatch.gateway.keys import key_object

    store, keys = await _key_store(database)
    try:
        rows = [await key_object(keys, row) for row in await keys.list_keys()]
    finally:
        await store.aclose()
    if as_json:
        print_json([row.model_dump() for row in rows])
        return
    headers = ["id", "name", "key", "budget", "spent", "reserved", "revoked"]
    cells = [
        [
            row.id,
            row.name,
            row.key_hint,
            "-" if row.max_budget is None else f"${row.max_budget:.4f}",
            f"${row.spent:.4f}",
            f"${row.reserved:.4f}",
            "yes" if row.revoked_at else "",
        ]
        for row in rows
    ]
    print_table(fitted_table(headers, cells))


@app.command("revoke", cls=Command)
@async_command
async def keys_revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id (key_...), as keys list shows it.")
    ],
    database: DatabaseOpt = None,
) -> None:
    """Revoke a key: the gateway answers it 401 from now on. Its batches keep running."""
    store, keys = await _key_store(database)
    try:
        found = await keys.revoke_key(key_id, time.time())
    finally:
        await store.aclose()
    if not found:
        raise NotFoundError(f"no key {key_id!r}")
    console.print(f"revoked {key_id}")
