"""What xAI rejects: models it cannot batch, line urls it does not serve, and a batch file
that is checked once, at create (xAI batch guide, docs.x.ai/docs/guides/batch-api).

Some problems refuse the create (an unknown model, a duplicate id); a malformed line lets
it succeed and xAI then cancels the batch with a message, as the capture saw.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .batch import FLAKY, OK, request_kind
from .errors import XAIError

SUPPORTED_URLS = frozenset({"/v1/chat/completions", "/v1/responses"})
# xAI rejects models it cannot batch; image and video models are not chat models.
_NOT_BATCHABLE = ("image", "imagine", "video")


def batchable(model: Any) -> bool:
    """Whether xAI accepts ``model`` in a batch."""
    return (
        isinstance(model, str)
        and model.startswith("grok-")
        and not any(word in model for word in _NOT_BATCHABLE)
    )


@dataclass
class Ingested:
    """An input file read at create: where each line starts and how each request ends."""

    offsets: array[int]
    kinds: bytearray
    invalid: str | None  # xAI cancels the batch with this message


def ingest(
    path: Path,
    seed: int,
    failure_rate: float,
    max_requests: int,
    flaky: frozenset[str] = frozenset(),
) -> Ingested:
    """Read a batch file once. Unknown models and duplicate ids reject the create (raised);
    a malformed line lets the create succeed and xAI cancels the batch with a message, as
    captured."""
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
                raise XAIError(400, f"Model {model} is not supported for batch processing.")
            custom_id = obj.get("custom_id")
            if isinstance(custom_id, str):
                if custom_id in seen:
                    msg = f"batch_request_id '{custom_id}' is duplicated in the input file"
                    raise XAIError(412, msg)
                seen.add(custom_id)
            offsets.append(start)
            if len(offsets) > max_requests:
                raise XAIError(400, f"A batch file may hold at most {max_requests} requests.")
            key = custom_id if isinstance(custom_id, str) else str(lineno)
            kind = request_kind(obj["body"], key, seed, failure_rate)
            # Failing on this attempt (`retryable_failure_rate`) only where nothing else does.
            kinds.append(FLAKY if kind == OK and key in flaky else kind)
    if not offsets:
        return broken("the file holds no requests")
    return Ingested(offsets, kinds, None)
