"""The xAI wire vocabulary: error envelope, dates, ids, page tokens, the batch object, and the
synchronous check of an uploaded batch file (reference §4, §9).

Kept apart from request handling so the shapes a client sees sit in one place.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import uuid
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from starlette.responses import Response

from ._base import json_response
from ._openai_fakes import hex_digest
from ._xai_batch import SUPPORTED_URLS, View, XAIBatch, batchable, day, request_kind

MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PAGE = 1000
FILE_TTL = 30 * 86400
EXPIRE_SECONDS = 30 * 86400.0  # a batch's expire_time is creation + 30 days (capture)

# xAI puts the gRPC status text in `code` (its REST layer sits on gRPC).
INVALID_ARGUMENT = "Client specified an invalid argument"
NOT_FOUND = "Some requested entity was not found"
FAILED_PRECONDITION = "The system is not in a state required for the operation's execution"
UNAUTHENTICATED = "The request does not have valid authentication credentials"
RESOURCE_EXHAUSTED = "Some resource has been exhausted"
INTERNAL = "Internal error"
UNAVAILABLE = "The service is currently unavailable"
_CODE_OF_STATUS = {
    400: INVALID_ARGUMENT,
    401: UNAUTHENTICATED,
    404: NOT_FOUND,
    405: NOT_FOUND,
    412: FAILED_PRECONDITION,
    429: RESOURCE_EXHAUSTED,
    503: UNAVAILABLE,
}


def xai_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """xAI's error body `{"code": <gRPC status text>, "error": <message>}`."""
    code = _CODE_OF_STATUS.get(status, INTERNAL if status >= 500 else INVALID_ARGUMENT)
    return json_response({"code": code, "error": message}, status, headers)


def new_id(prefix: str) -> str:
    """`batch_<uuid>`, `file_<uuid>` (reference §9)."""
    return f"{prefix}_{uuid.uuid4()}"


def encode_token(position: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"p": position})).decode().rstrip("=")


def decode_token(token: str | None) -> int | None:
    """The position a page token names; None for a token we never issued."""
    if not token:
        return 0
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position = data["p"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        return None
    return position if isinstance(position, int) and position >= 0 else None


def parse_limit(raw: str | None, default: int) -> int | None:
    try:
        limit = default if raw is None else int(raw)
    except ValueError:
        return None
    return limit if 1 <= limit <= MAX_PAGE else None


@dataclass
class XAIFile:
    id: str
    filename: str
    bytes: int
    created_at: int
    expires_at: int
    path: Path

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": "batch",
        }


def render_batch(batch: XAIBatch, view: View) -> dict[str, Any]:
    """The batch object as `GET /v1/batches/{id}` returns it for the instant viewed."""
    t = batch.timeline
    out: dict[str, Any] = {
        "batch_id": batch.id,
        "name": batch.name,
        "create_time": day(t.created),
        "expire_time": day(t.expire_at),
        "create_api_key_id": batch.key_id,
        "cancel_time": day(view.cancel_time),
        "cancel_by_xai_message": view.xai_message,
        "state": batch.counters(view),
    }
    if batch.input_file_id is not None:
        out["input_file_id"] = batch.input_file_id
    return out


@dataclass
class Ingested:
    """An input file read at create: where each line starts and how each request ends."""

    offsets: array[int]
    kinds: bytearray
    invalid: str | None  # xAI cancels the batch with this message


def ingest(
    path: Path, seed: int, failure_rate: float, max_requests: int
) -> Ingested | tuple[int, str]:
    """Read a batch file once. Unknown models and duplicate ids reject the create
    (`(status, message)`); a malformed line lets the create succeed and xAI cancels the
    batch with a message, as captured."""
    offsets: array[int] = array("q")
    kinds = bytearray()
    seen: set[str] = set()

    def broken(why: str) -> Ingested:
        return Ingested(array("q"), bytearray(), f"JSONL file validation failed: {why}")

    position = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            start, position = position, position + len(raw)
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return broken(f"line {lineno}: invalid JSON: {exc}")
            if not isinstance(obj, dict) or not isinstance(obj.get("body"), dict):
                return broken(f"line {lineno}: missing field `body`")
            if obj.get("url", "/v1/chat/completions") not in SUPPORTED_URLS:
                return broken(f"line {lineno}: unsupported url {obj.get('url')!r}")
            model = obj["body"].get("model")
            if not batchable(model):
                return 400, f"Model {model} is not supported for batch processing."
            custom_id = obj.get("custom_id")
            if isinstance(custom_id, str):
                if custom_id in seen:
                    return 412, f"batch_request_id '{custom_id}' is duplicated in the input file"
                seen.add(custom_id)
            offsets.append(start)
            if len(offsets) > max_requests:
                return 400, f"A batch file may hold at most {max_requests} requests."
            key = custom_id if isinstance(custom_id, str) else str(lineno)
            kinds.append(request_kind(obj["body"], key, seed, failure_rate))
    if not offsets:
        return broken("the file holds no requests")
    return Ingested(offsets, kinds, None)


def key_id(authorization: str) -> str:
    """A stable id for the caller's key (`create_api_key_id`), never the key itself."""
    digest = hex_digest("api-key", authorization.partition(" ")[2].strip(), size=16)
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:]}"


def copy_to(source: BinaryIO, path: Path) -> int:
    """Copy an upload to disk in 1 MB steps; its size."""
    source.seek(0)
    with path.open("wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)
        return int(target.tell())
