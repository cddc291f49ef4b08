"""How results are encoded for storage, shared by the decoder (which builds records) and
the store (which writes them); neither imports the other.

JSON documents are stored as orjson bytes, zlib-compressed when that pays. A result's
body is stored as `orjson.dumps` wrote it (never the provider's own spelling of it), so
exports copy it out as it is (`json_bytes`): parsing and writing it again would give the
same bytes.

A result record is one tuple per row: either the full row in `RESULT_COLUMNS` order (the
results table's column order), or, for a plain success (no error, no native row kept),
the shorter `SUCCESS_COLUMNS` tuple: the store writes the constant columns as SQL
literals, and binding five fewer parameters per row is a measurable part of the write.
Tuples bind about a quarter faster than named parameters. Unit tests check both orders
against the table's.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
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


def json_bytes(blob: bytes | None) -> bytes | None:
    """The JSON document of a packed blob, unparsed."""
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:1] == _ZLIB:
        return zlib.decompress(blob[1:])
    return blob[1:]


def unpack(blob: bytes | None) -> Any:
    if blob is None:
        return None
    blob = bytes(blob)
    if blob[:1] == _ZLIB:
        return orjson.loads(zlib.decompress(blob[1:]))
    return orjson.loads(blob[1:])


# -- result records ----------------------------------------------------------------------

ResultRecord = tuple[Any, ...]
RESULT_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "custom_id",
    "job_id",
    "status",
    "status_code",
    "row_id",
    "request_id",
    "error_code",
    "error_message",
    "retryable",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_input",
    "cost_output",
    "body",
    "raw",
    "created_at",
)
SUCCESS_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "custom_id",
    "job_id",
    "status_code",
    "row_id",
    "request_id",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_input",
    "cost_output",
    "body",
    "created_at",
)
# What a short record leaves out: the same for every plain success.
SUCCESS_CONSTANTS: dict[str, Any] = {
    "status": "succeeded",
    "error_code": None,
    "error_message": None,
    "retryable": False,
    "raw": None,
}
_SHORT = len(SUCCESS_COLUMNS)


def record_dicts(records: Iterable[ResultRecord]) -> list[dict[str, Any]]:
    """Records as full rows by column name (for hooks; not on the hot path)."""
    return [
        dict(zip(SUCCESS_COLUMNS, record, strict=True)) | SUCCESS_CONSTANTS
        if len(record) == _SHORT
        else dict(zip(RESULT_COLUMNS, record, strict=True))
        for record in records
    ]
