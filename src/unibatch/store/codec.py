"""Compact storage of JSON documents: orjson bytes, zlib-compressed when that pays."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

_PLAIN = b"j"
_ZLIB = b"z"
# Below this size compression saves little and costs a quarter of ingest time (measured by
# bench/ingest.py: zlib on a typical 500-byte chat completion is ~8 us of ~30 us per row).
_COMPRESS_FROM = 4096


def pack(obj: Any) -> bytes:
    data = orjson.dumps(obj)
    return pack_bytes(data)


def pack_bytes(data: bytes) -> bytes:
    """Pack an already-serialised JSON document."""
    if len(data) >= _COMPRESS_FROM:
        return _ZLIB + zlib.compress(data, 1)
    return _PLAIN + data


def unpack(blob: bytes | None) -> Any:
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:1] == _ZLIB:
        return orjson.loads(zlib.decompress(blob[1:]))
    return orjson.loads(blob[1:])
