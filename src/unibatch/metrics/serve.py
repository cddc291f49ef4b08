"""`unibatch worker --metrics-port`: `/metrics` on its own small server, in the worker's
event loop (no thread: the store's aggregates are read on the worker's own engine)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from unibatch.listen import listen
from unibatch.metrics.collector import CONTENT_TYPE_LATEST, render

if TYPE_CHECKING:
    from unibatch.store import Store


class _QuietServer(uvicorn.Server):
    """The worker owns SIGINT and SIGTERM: this server takes no signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def metrics_app(store: Store) -> Starlette:
    """An ASGI app answering `GET /metrics` (and nothing else) from `store`."""

    async def metrics(request: Request) -> Response:
        return Response(await render(store), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", metrics)])


@contextlib.asynccontextmanager
async def metrics_server(store: Store, host: str, port: int) -> AsyncIterator[int]:
    """Serve `/metrics` on `host`:`port` while the block runs; yields the port bound (0
    picks a free one). A port in use is a `ConfigurationError` before anything starts."""
    sock = listen(host, port)
    config = uvicorn.Config(
        metrics_app(store), log_level="warning", lifespan="off", log_config=None, ws="none"
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task
