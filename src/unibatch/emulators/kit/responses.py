"""Response bodies as the emulators send them: JSON via orjson, and paced file streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (fast, and keeps non-ASCII ids byte-exact)."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def rechunk(pieces: Iterable[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """Group small pieces (result rows) into network-sized chunks."""
    buf: list[bytes] = []
    filled = 0
    for piece in pieces:
        buf.append(piece)
        filled += len(piece)
        if filled >= size:
            yield b"".join(buf)
            buf, filled = [], 0
    if buf:
        yield b"".join(buf)


def read_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes, chunk by chunk, so a download never holds the whole file."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


async def paced(chunks: Iterator[bytes], delay: Callable[[], float]) -> AsyncIterator[bytes]:
    """Stream ``chunks`` from a worker thread, sleeping ``delay()`` between them.

    The thread keeps file reads and row generation off the event loop; the delay opens the
    window in which a test can kill a client mid-download.
    """
    first = True
    async for chunk in iterate_in_threadpool(chunks):
        pause = delay()
        if not first and pause > 0:
            await asyncio.sleep(pause)
        first = False
        yield chunk
