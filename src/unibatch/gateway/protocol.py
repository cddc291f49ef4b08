"""The HTTP protocol `unibatch serve` speaks: uvicorn's h11 protocol with a deadline for a
request's line and headers.

uvicorn times out idle keep-alive connections only after a response; a connection that
opens and then sends nothing, or half a request line, is kept forever, so a few hundred
such sockets exhaust a server's file descriptors. Here every request's line and headers
must arrive within `header_timeout` seconds of the connection opening (or of the request's
first byte, on a kept-alive connection), else the connection is closed. A timer starts
once per request and is not pushed back by each byte, so sending one byte at a time does
not keep a connection open either. Request bodies are not bounded: uploads may be large.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("unibatch.gateway")


class HeaderTimeoutProtocol(H11Protocol):
    """h11 with a request-header deadline; `with_header_timeout` sets it per server."""

    header_timeout: float = 15.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._awaiting_headers():
            # The first bytes of a request on a kept-alive connection start its deadline.
            self._start_header_timer()
        else:
            self._stop_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _awaiting_headers(self) -> bool:
        # h11 leaves the client's side IDLE until a whole request line and headers are in.
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _start_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self._awaiting_headers():
            log.debug(
                "%s: no complete request headers after %ss, closing",
                self.client,
                self.header_timeout,
            )
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to give uvicorn (`uvicorn.Config(http=...)`) for this deadline."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
