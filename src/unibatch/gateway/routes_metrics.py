"""`GET /metrics`: Prometheus metrics, without a key.

The page holds counts, token and cost totals and latencies by provider: no batch or key
ids, no key names, no request content. Like most exporters it asks for no credentials,
since Prometheus scrapers rarely carry them; `UNIBATCH_METRICS=false` turns it off on a
gateway that faces the internet (a worker's `--metrics-port` on a private interface
serves the same figures).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from unibatch.gateway.deps import GatewayDep
from unibatch.gateway.errors import APIError
from unibatch.metrics.collector import CONTENT_TYPE_LATEST, render

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics(gw: GatewayDep) -> Response:
    if not gw.settings.metrics:
        raise APIError(404, "metrics are turned off (UNIBATCH_METRICS=false)", code="not_found")
    return Response(await render(gw.engine.store), media_type=CONTENT_TYPE_LATEST)
