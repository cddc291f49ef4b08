"""What the Gemini batch API rejects at create, with 400 INVALID_ARGUMENT (or 404 for a model
that does not serve the method): no batch is made.

Checks raise :class:`InvalidInput` and copy the good rows to the batch's own JSONL store as
they go, so a file of any size is validated in one streaming pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import orjson


def model_ok(model: str, embed: bool) -> bool:
    """Whether ``model`` (``models/…``) serves the batch method asked for."""
    bare = model.removeprefix("models/")
    return "embedding" in bare if embed else bare.startswith(("gemini", "gemma"))


class InvalidInput(ValueError):
    """A request the real API rejects at create with 400 INVALID_ARGUMENT (no batch made)."""


def check_request(obj: Any, where: str, *, embed: bool, file_row: bool) -> dict[str, Any]:
    """One input entry (a file row or an inline entry), or `InvalidInput`."""
    if not isinstance(obj, dict):
        raise InvalidInput(f"{where}: not a JSON object.")
    request = obj.get("request")
    if not isinstance(request, dict):
        raise InvalidInput(f"{where}: missing field 'request'.")
    if file_row and not isinstance(obj.get("key"), str):
        raise InvalidInput(f"{where}: missing field 'key'.")
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        raise InvalidInput(f"{where}: 'metadata' must be a map of strings.")
    if embed:
        if not isinstance(request.get("content"), dict):
            raise InvalidInput(f"{where}: missing field 'request.content'.")
    elif not isinstance(request.get("contents"), list) or not request["contents"]:
        raise InvalidInput(f"{where}: 'request.contents' must not be empty.")
    return obj


def scan_file(source: Path, target: BinaryIO, *, embed: bool, max_requests: int) -> int:
    """Validate an uploaded JSONL file row by row, copying good rows to `target`."""
    total = 0
    with source.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidInput(f"Line {lineno} of the input file is not valid JSON.") from None
            check_request(obj, f"Line {lineno}", embed=embed, file_row=True)
            target.write(orjson.dumps(obj) + b"\n")
            total += 1
            if total > max_requests:
                raise InvalidInput(f"The batch holds more than {max_requests} requests.")
    if total == 0:
        raise InvalidInput("The input file is empty.")
    return total


def write_inline(entries: Any, target: Path, embed: bool, limit: int) -> int:
    """Validate inline entries, writing them to ``target`` as JSONL; their count."""
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("batch.input_config.requests.requests must not be empty.")
    if len(entries) > limit:
        raise InvalidInput(f"The batch holds more than {limit} requests.")
    with target.open("wb") as out:
        for i, entry in enumerate(entries):
            check_request(entry, f"requests[{i}]", embed=embed, file_row=False)
            out.write(orjson.dumps(entry) + b"\n")
    return len(entries)
