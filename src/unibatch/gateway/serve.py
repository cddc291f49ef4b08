"""`unibatch serve`: the gateway under uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from unibatch.config import Settings
from unibatch.gateway.app import create_app
from unibatch.gateway.protocol import with_header_timeout
from unibatch.gateway.settings import GatewaySettings
from unibatch.listen import listen

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
    gateway_settings = gateway_settings or GatewaySettings()
    listening = listen(host, port)
    app = create_app(settings, gateway_settings=gateway_settings, worker=worker)
    # Access logs show paths and statuses only; uvicorn never logs the Authorization header.
    # No log config of its own: its lines go through the root logger's handlers, which
    # `unibatch.logs.setup` makes mask credentials.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        log_config=None,
        # h11 with a deadline for request headers (uvicorn itself has none).
        http=with_header_timeout(gateway_settings.header_timeout),
    )
    # Bound before the app starts: a port in use is an error at once, not a started worker
    # with nothing to serve (see unibatch.listen).
    uvicorn.Server(config).run(sockets=[listening])
