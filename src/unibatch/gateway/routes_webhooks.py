"""`/v1/webhooks`: the endpoints a key's batches are reported to (Standard Webhooks).

An endpoint hears of every batch of the key that registered it (the master key's: every
batch made without a key, CLI and Python API included). Its secret is shown once, in
the answer to the create; a batch can also name one of them in `metadata.webhook_url`.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from unibatch.engine.webhook_hosts import check_public
from unibatch.errors import InputError
from unibatch.gateway.auth import Caller
from unibatch.gateway.deps import GatewayDep
from unibatch.gateway.errors import APIError, not_found
from unibatch.gateway.models import (
    WebhookCreate,
    WebhookDeleted,
    WebhookList,
    WebhookObject,
    error_responses,
)

router = APIRouter(
    prefix="/v1/webhooks", tags=["webhooks"], responses=error_responses(400, 401, 404)
)


def _shown(row: dict[str, Any], *, secret: bool = False) -> WebhookObject:
    return WebhookObject(
        id=row["id"],
        url=row["url"],
        created_at=int(row["created_at"]),
        secret=row["secret"] if secret else None,
    )


@router.post("", response_model=WebhookObject)
async def create_webhook(gw: GatewayDep, who: Caller, spec: WebhookCreate) -> WebhookObject:
    """Register an endpoint for this key's batches; the answer carries its signing secret,
    the only time it is shown."""
    try:
        # The engine's setting: the worker that delivers checks by the same one.
        if not who.is_master and not gw.engine.settings.webhook_private_hosts:
            await check_public(spec.url)
        row = await gw.engine.store.add_endpoint(
            spec.url, key_id=who.key_id, secret=spec.secret, now=time.time()
        )
    except InputError as exc:
        param = "secret" if exc.field == "webhook_secret" else "url"
        raise APIError(400, exc.detail, param=param, code="invalid_value") from None
    return _shown(row, secret=True)


@router.get("", response_model=WebhookList)
async def list_webhooks(gw: GatewayDep, who: Caller) -> WebhookList:
    """This key's endpoints, oldest first (without their secrets)."""
    rows = await gw.engine.store.list_endpoints(who.key_id)
    return WebhookList(data=[_shown(row) for row in rows])


@router.delete("/{endpoint_id}", response_model=WebhookDeleted)
async def delete_webhook(gw: GatewayDep, who: Caller, endpoint_id: str) -> WebhookDeleted:
    """Stop sending to an endpoint; its deliveries not yet made are dropped."""
    if not await gw.engine.store.revoke_endpoint(endpoint_id, who.key_id, now=time.time()):
        raise not_found("webhook endpoint", endpoint_id)
    return WebhookDeleted(id=endpoint_id)
