"""`unibatch serve`: the gateway under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from unibatch.config import Settings
from unibatch.gateway.app import create_app
from unibatch.gateway.settings import GatewaySettings

log = logging.getLogger("unibatch.gateway")


def serve(
    host: str,
    port: int,
    *,
    settings: Settings,
    gateway_settings: GatewaySettings | None = None,
    worker: bool = True,
    log_level: str = "info",
) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn stops the worker through the app's lifespan."""
    app = create_app(settings, gateway_settings=gateway_settings, worker=worker)
    # Access logs show paths and statuses only; uvicorn never logs the Authorization header.
    uvicorn.run(app, host=host, port=port, log_level=log_level, lifespan="on")
