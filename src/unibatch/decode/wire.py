"""The pipe protocol between the ingesting process and its decoder helper.

Requests (ingesting process -> helper) are JSON lines: first a greeting with the
providers' environment, then one line per job. Replies (helper -> ingesting process) are
frames: one kind byte, a 4-byte big-endian length, the payload. Records travel as
`marshal` data: they hold only str, bytes, int, float, bool and None, and marshal builds
no other objects (unlike pickle), at a fraction of JSON's cost.
"""

from __future__ import annotations

import marshal
import struct
from typing import Any

import orjson

from unibatch.decode.records import Record, Unresolved
from unibatch.errors import (
    ConfigurationError,
    DecoderError,
    ForeignBatchError,
    PermanentProviderError,
    TransientProviderError,
)

ROWS, DONE, ERROR = b"R", b"D", b"E"
HEADER = struct.Struct(">cI")


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def encode_rows(rows: list[Record], unresolved: Unresolved) -> bytes:
    return marshal.dumps((rows, unresolved), 4)


def decode_rows(payload: bytes) -> tuple[list[Record], Unresolved]:
    rows, unresolved = marshal.loads(payload)
    return rows, unresolved


def encode_error(exc: BaseException) -> bytes:
    doc: dict[str, Any] = {"message": str(exc) or type(exc).__name__}
    if isinstance(exc, TransientProviderError):
        doc |= {"kind": "transient", "status": exc.status_code, "retry_after": exc.retry_after}
    elif isinstance(exc, ForeignBatchError):
        doc["kind"] = "foreign"
    elif isinstance(exc, PermanentProviderError):
        doc |= {"kind": "permanent", "status": exc.status_code}
    elif isinstance(exc, ConfigurationError):
        doc["kind"] = "configuration"
    else:
        doc |= {"kind": "other", "message": f"{type(exc).__name__}: {exc}"}
    return orjson.dumps(doc)


def decode_error(payload: bytes) -> Exception:
    """The exception the helper raised, as the same class on this side."""
    doc = orjson.loads(payload)
    message = doc["message"]
    if doc["kind"] == "transient":
        return TransientProviderError(
            message, status_code=doc["status"], retry_after=doc["retry_after"]
        )
    if doc["kind"] == "foreign":
        return ForeignBatchError(message)
    if doc["kind"] == "permanent":
        return PermanentProviderError(message, status_code=doc["status"])
    if doc["kind"] == "configuration":
        return ConfigurationError(message)
    return DecoderError(f"decoder process: {message}")
