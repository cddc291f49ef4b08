"""The listening socket `unibatch serve` and the emulator are handed."""

from __future__ import annotations

import asyncio
import socket

from unibatch.listen import listen


async def _accepted_nodelay() -> int:
    """TCP_NODELAY of the server side of one connection accepted by asyncio on `listen()`."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=listen("127.0.0.1", 0))
    async with server:
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await seen
        writer.close()
    return value


def test_listening_socket_is_tcp_so_connections_skip_nagle() -> None:
    # Without TCP_NODELAY on accepted connections every response the gateway writes in
    # two parts waited ~40 ms for the client's delayed ACK.
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
    assert asyncio.run(_accepted_nodelay()) != 0
