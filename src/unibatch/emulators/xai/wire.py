"""The xAI wire vocabulary: ids, page tokens, files and the batch object (xAI REST reference).

Kept apart from request handling so the shapes a client sees sit in one place.
"""

from __future__ import annotations

import base64
import binascii
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from ..kit.fakes import hex_digest
from .batch import View, XAIBatch, day

MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
MAX_PAGE = 1000
FILE_TTL = 30 * 86400
EXPIRE_SECONDS = 30 * 86400.0  # a batch's expire_time is creation + 30 days (capture)


def new_id(prefix: str) -> str:
    """`batch_<uuid>`, `file_<uuid>`, as xAI writes its ids."""
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
