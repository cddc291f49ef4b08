"""Inline mode of the xAI emulator: `POST /v1/batches/{id}/requests` (xAI REST reference).

Added requests are appended to a JSONL file of the batch's own, in the same line shape as
an uploaded file, so results, counters and paging treat both modes alike. A call is
admitted whole or not at all; an id re-sent with the same content is a no-op, with other
content a 412; requests without an id get `batch_request_<uuid>`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..kit.fakes import hex_digest
from .batch import XAIBatch, request_kind
from .errors import XAIError
from .validate import batchable
from .wire import MAX_REQUESTS, new_id

MAX_CALL_BYTES = 25 * 1024 * 1024  # one add-requests call (older guide)


def add_requests(batch: XAIBatch, raw: bytes, max_requests: int | None) -> None:
    """Append the call's requests to `batch`, or raise the error refusing the whole call."""
    assert batch.path is not None and batch.inline_ids is not None
    if len(raw) > MAX_CALL_BYTES:
        raise XAIError(400, "An add-requests call may carry at most 25 MB.")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise XAIError(400, "Failed to parse the request body as JSON.") from None
    items = payload.get("batch_requests") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise XAIError(400, "Missing required field 'batch_requests'.")
    admitted: list[tuple[str, dict[str, Any], str]] = []
    in_call: set[str] = set()
    for item in items:
        kinds = item.get("batch_request") if isinstance(item, dict) else None
        chat = kinds.get("chat_get_completion") if isinstance(kinds, dict) else None
        if not isinstance(chat, dict):
            raise XAIError(400, "Each batch_request needs a 'chat_get_completion' request.")
        if not batchable(chat.get("model")):
            msg = f"Model {chat.get('model')} is not supported for batch processing."
            raise XAIError(400, msg)
        rid = item.get("batch_request_id")
        digest = hex_digest(orjson.dumps(chat, option=orjson.OPT_SORT_KEYS).decode())
        if rid is None:
            rid = new_id("batch_request")
        elif not isinstance(rid, str) or not rid:
            raise XAIError(400, "batch_request_id must be a non-empty string.")
        if rid in in_call:
            raise XAIError(412, f"batch_request_id '{rid}' appears twice in one call")
        known = batch.inline_ids.get(rid)
        if known is not None:
            if known != digest:
                msg = f"batch_request_id '{rid}' content differs from originally submitted"
                raise XAIError(412, msg)
            continue  # an identical re-add is idempotent
        in_call.add(rid)
        admitted.append((rid, chat, digest))
    if batch.total + len(admitted) > (max_requests or MAX_REQUESTS):
        raise XAIError(400, f"A batch may hold at most {max_requests or MAX_REQUESTS} requests.")
    with batch.path.open("ab") as fh:
        for rid, chat, digest in admitted:
            batch.offsets.append(fh.tell())
            line = {"custom_id": rid, "url": "/v1/chat/completions", "body": chat}
            fh.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
            batch.kinds.append(request_kind(chat, rid, batch.seed, batch.failure_rate))
            batch.inline_ids[rid] = digest
