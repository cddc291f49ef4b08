"""`/v1/keys` (master key only), `/v1/usage` and `/health`."""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response

from unibatch.gateway.auth import Caller, Master
from unibatch.gateway.context import gateway
from unibatch.gateway.deps import GatewayDep
from unibatch.gateway.errors import not_found
from unibatch.gateway.keys import create_key, key_object
from unibatch.gateway.models import (
    Health,
    KeyCreate,
    KeyCreated,
    KeyDeleted,
    KeyList,
    UsageList,
    UsageRow,
    error_responses,
)

router = APIRouter(tags=["keys and usage"], responses=error_responses(400, 401, 403, 404))


@router.post("/v1/keys", response_model=KeyCreated)
async def post_key(gw: GatewayDep, _: Master, spec: KeyCreate) -> KeyCreated:
    """Create a virtual key (master key only). The key is shown once."""
    return await create_key(
        gw.store, spec.name, spec.max_budget, cache=spec.cache, cache_ttl=spec.cache_ttl
    )


@router.get("/v1/keys", response_model=KeyList)
async def list_keys(gw: GatewayDep, _: Master) -> KeyList:
    return KeyList(data=[await key_object(gw.store, r) for r in await gw.store.list_keys()])


@router.delete("/v1/keys/{key_id}", response_model=KeyDeleted)
async def revoke_key(gw: GatewayDep, _: Master, key_id: str) -> KeyDeleted:
    """Revoke a key: it answers 401 from now on; its batches keep running."""
    if not await gw.store.revoke_key(key_id, time.time()):
        raise not_found("key", key_id)
    return KeyDeleted(id=key_id)


@router.get("/v1/usage", response_model=UsageList)
async def usage(gw: GatewayDep, who: Caller, key_id: str | None = None) -> UsageList:
    """Requests, tokens and cost (batch prices, USD) per key and model: this key's, or
    every key's (or `key_id`'s) for the master key. Counted once per result, when it lands."""
    if not who.is_master and key_id not in (None, who.key_id):
        return UsageList(data=[])  # another key's usage is as invisible as its batches
    rows = await gw.store.usage_summary(key_id if who.is_master else who.scope)
    return UsageList(data=[UsageRow(**row) for row in rows])


@router.get("/health", response_model=Health, tags=["health"], responses={503: {"model": Health}})
async def health(request: Request, response: Response) -> Health:
    """Liveness for load balancers. When this server runs the engine's worker, `worker`
    says whether that loop is alive and reaching the database (503 when not), and
    `worker_last_loop_seconds` how long ago it last went round."""
    task: asyncio.Task[None] | None = getattr(request.app.state, "worker_task", None)
    if task is None:
        return Health(worker=False)
    state = gateway(request).engine.worker_health()
    error = state.error
    if task.done():
        failure = None if task.cancelled() else task.exception()
        error = f"the worker stopped: {failure!r}" if failure else "the worker stopped"
    alive = error is None and state.running
    if not alive:
        response.status_code = 503
    since = None if state.last_loop is None else round(time.monotonic() - state.last_loop, 3)
    return Health(
        status="ok" if alive else "unavailable",
        worker=alive,
        worker_last_loop_seconds=since,
        worker_error=error,
    )
