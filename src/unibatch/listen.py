"""Binding a server's listening socket before the server starts.

uvicorn binds only once the app has started (the gateway's worker included) and ends a
failed start with exit code 3, which the CLI keeps for "the batch ended failed". Binding
first makes a port in use a plain configuration error, before anything runs.
"""

from __future__ import annotations

import socket

from unibatch.errors import ConfigurationError


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` and listening, or `ConfigurationError` saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        bound = socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
    # `create_server` leaves the socket's protocol number 0, and asyncio turns Nagle's
    # algorithm off (TCP_NODELAY) only on connections accepted from a socket that says
    # IPPROTO_TCP. With Nagle on, a response written in two parts (head, then body) waits
    # for the client's delayed ACK: about 40 ms on Linux, on every response. Made again
    # from its descriptor, the socket reads its protocol from the kernel.
    return socket.socket(fileno=bound.detach())
