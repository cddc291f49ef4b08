"""`/v1/keys` (master key only), `/v1/usage` and `/health`."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request

from unibatch.gateway.auth import Caller, Master
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
    return await create_key(gw.store, spec.name, spec.max_budget)


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


@router.get("/health", response_model=Health, tags=["health"])
async def health(request: Request) -> Health:
    """Liveness; `worker` tells whether this process also runs the engine's worker."""
    return Health(worker=bool(getattr(request.app.state, "worker_running", False)))
