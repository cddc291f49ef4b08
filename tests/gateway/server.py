"""A real gateway server on loopback (uvicorn, port 0) in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    def __init__(self, app: FastAPI) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                lifespan="on",
                ws="none",
                # Open keep-alive connections must not hold up the end of a test.
                timeout_graceful_shutdown=2,
            )
        )
        self.port: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.port = int(self.servers[0].sockets[0].getsockname()[1])


@contextmanager
def running_gateway(app: FastAPI) -> Iterator[str]:
    """Serve `app` (lifespan included, so its worker runs) and yield its base URL."""
    server = _Server(app)
    thread = threading.Thread(target=server.run, name="unibatch-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while server.port is None:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("gateway server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
