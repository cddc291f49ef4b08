"""Reading a Message Batches create body from disk into the emulator's JSONL request store.

The body (up to 256 MB) is decoded one request at a time with the standard library's
``raw_decode``, so its requests never exist as Python objects all at once. A body not in
the ``{"requests": [...]}`` shape the SDKs send is decoded whole instead, which also gives
malformed JSON its usual error message.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from .validate import RequestCheck

_CHUNK = 64 * 1024
_OPENING = re.compile(r'\s*\{\s*"requests"\s*:\s*\[')
_SPACE = re.compile(r"\s*")


class _NotStreamable(ValueError):
    pass


class _Reader:
    """A text buffer over a file that refills on demand."""

    def __init__(self, fh: IO[str], chunk: int) -> None:
        self.fh = fh
        self.chunk = chunk
        self.buf = fh.read(chunk)
        self.pos = 0
        self.eof = not self.buf

    def more(self) -> bool:
        if self.eof:
            return False
        # Read at least as much as is held, so an item far larger than a chunk is
        # re-decoded a logarithmic number of times, not once per chunk.
        chunk = self.fh.read(max(self.chunk, len(self.buf) - self.pos))
        self.eof = not chunk
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return bool(chunk)

    def peek(self) -> str:
        """The next non-space character ('' at the end of the file)."""
        while True:
            match = _SPACE.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf) or not self.more():
                return self.buf[self.pos : self.pos + 1]


def iter_requests(path: Path, chunk: int = _CHUNK) -> Iterator[Any]:
    """The items of the body's top-level `requests` array, one at a time.

    Raises `_NotStreamable` for any other shape and `ValueError` for malformed JSON."""
    decoder = json.JSONDecoder()
    with path.open(encoding="utf-8") as fh:
        reader = _Reader(fh, chunk)
        opening = _OPENING.match(reader.buf)
        while opening is None and len(reader.buf) < 256 and reader.more():
            opening = _OPENING.match(reader.buf)
        if opening is None:
            raise _NotStreamable("not a plain requests body")
        reader.pos = opening.end()
        if reader.peek() == "]":
            reader.pos += 1
        else:
            while True:
                reader.peek()
                try:
                    item, end = decoder.raw_decode(reader.buf, reader.pos)
                except json.JSONDecodeError:
                    if reader.more():
                        continue  # the item runs past the buffer: read on and retry
                    raise
                reader.pos = end
                yield item
                following = reader.peek()
                reader.pos += 1
                if following == "]":
                    break
                if following != ",":
                    raise ValueError("expected ',' or ']' in requests")
        if reader.peek() != "}":
            raise _NotStreamable("more keys after requests")
        reader.pos += 1
        if reader.peek() != "":
            raise ValueError("extra data after the body")


def store_requests(raw: Path, path: Path, max_requests: int) -> int | str:
    """Validate the create body in `raw` and keep its requests in `path` as JSONL: the
    request count, or the 400 message. Runs in a thread; `raw` is removed."""
    try:
        try:
            return _write(iter_requests(raw), path, max_requests)
        except ValueError:
            # Any other shape, or broken JSON: decode it whole for the exact answer.
            try:
                body = orjson.loads(raw.read_bytes())
            except orjson.JSONDecodeError as exc:
                return f"Invalid JSON body: {exc}"
            if not isinstance(body, dict) or "requests" not in body:
                return "requests: Field required"
            if not isinstance(body["requests"], list):
                return "requests: Input should be a valid list"
            return _write(iter(body["requests"]), path, max_requests)
    finally:
        with contextlib.suppress(OSError):
            raw.unlink()


def _write(items: Iterator[Any], path: Path, max_requests: int) -> int | str:
    check = RequestCheck(max_requests)
    count = 0
    problem: str | None = None
    with path.open("wb") as sink:
        for item in items:
            problem = check.item(count, item)
            if problem is not None:
                break
            sink.write(orjson.dumps({"custom_id": item["custom_id"], "params": item["params"]}))
            sink.write(b"\n")
            count += 1
    problem = problem or check.end(count)
    if problem is not None:
        path.unlink(missing_ok=True)
        return problem
    return count
