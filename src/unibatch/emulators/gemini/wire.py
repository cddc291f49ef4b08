"""The Gemini wire vocabulary: timestamps, file and batch records, Operations.

Shapes follow Google's batch-mode docs and REST reference (ai.google.dev/api/batch-mode):
ids `batches/…` and `files/…`, RFC 3339 timestamps
with nanoseconds, int64 counters as strings with zero counters left out (proto3 JSON), and
every batch wrapped in a long-running Operation.
"""

from __future__ import annotations

import base64
import secrets
import string
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request

from ..kit.timeline import Phase, Schedule

TYPE_PREFIX = "type.googleapis.com/google.ai.generativelanguage.v1main."
FILE_TTL = 48 * 3600
MAX_FILE_BYTES = 2 * 1024**3
MAX_INLINE_BYTES = 20 * 1024 * 1024
_ALPHABET = string.ascii_lowercase + string.digits
# Our lifecycle phases (shared timeline) as Gemini's BatchState.
_STATES = {
    "validating": "BATCH_STATE_PENDING",
    "in_progress": "BATCH_STATE_RUNNING",
    "finalizing": "BATCH_STATE_RUNNING",
    "cancelling": "BATCH_STATE_RUNNING",
    "completed": "BATCH_STATE_SUCCEEDED",
    "failed": "BATCH_STATE_FAILED",
    "expired": "BATCH_STATE_EXPIRED",
    "cancelled": "BATCH_STATE_CANCELLED",
}


def timestamp(seconds: float) -> str:
    """RFC 3339 with nanoseconds, as Google's JSON mapping writes a `Timestamp`."""
    whole = int(seconds)
    nanos = round((seconds - whole) * 1e9) % 1_000_000_000
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def new_id(size: int = 16) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(size))


def pick(mapping: dict[str, Any], *names: str) -> Any:
    """The first of `names` present: proto JSON accepts camelCase and snake_case."""
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


def counters(**values: int) -> dict[str, str]:
    """int64 counters as strings, zero ones omitted (proto3 JSON)."""
    return {name: str(value) for name, value in values.items() if value}


def page(request: Request, items: list[Any], default: int = 50) -> tuple[list[Any], str | None]:
    """One page of `items` by `pageSize`/`pageToken`; the token is an opaque offset."""
    try:
        size = int(request.query_params.get("pageSize") or default)
        token = request.query_params.get("pageToken")
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError as exc:
        raise ValueError(f"Invalid page request: {exc}") from None
    size = max(1, min(size, 1000))
    end = start + size
    after = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else None
    return items[start:end], after


@dataclass
class FileRecord:
    """A Files API file: uploaded bytes on disk, or the responses file of a batch."""

    name: str
    display_name: str
    mime_type: str
    size: int
    created: float
    path: Path | None = None
    batch: str | None = None  # the batch whose responses this generated file holds

    def as_json(self, base_url: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "mimeType": self.mime_type,
            "sizeBytes": str(self.size),
            "createTime": timestamp(self.created),
            "updateTime": timestamp(self.created),
            "expirationTime": timestamp(self.created + FILE_TTL),
            "uri": f"{base_url}/{self.name}",
            "state": "ACTIVE",
            "source": "GENERATED" if self.batch else "UPLOADED",
        }
        if self.display_name:
            out["displayName"] = self.display_name
        if self.batch:
            # Only generated files can be downloaded; google-genai's `files.download`
            # checks for this field before it tries.
            out["downloadUri"] = f"{base_url}/{self.name}:download?alt=media"
        return out


@dataclass
class UploadSession:
    """A resumable upload between `start` and `finalize`."""

    path: Path
    expected: int | None
    display_name: str
    mime_type: str
    received: int = 0


@dataclass
class BatchRecord:
    """A batch and what its Operation needs; requests live on disk as JSONL."""

    name: str
    model: str
    display_name: str
    input_config: dict[str, Any]
    inline: bool  # inline input answers inline; file input answers with a responses file
    embed: bool
    schedule: Schedule
    total: int
    failing: list[int]  # sorted indices of requests that answer an error entry
    input_path: Path
    seed: int
    failure_rate: float
    cancelling_at: float | None = None
    responses_file: str | None = None
    # Indices of requests that fail on this attempt of theirs (`retryable_failure_rate`).
    flaky: frozenset[int] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)

    def failed_before(self, cut: int) -> int:
        return bisect_left(self.failing, cut)


def state_of(phase: Phase) -> str:
    return _STATES[phase.status]


def render_operation(
    batch: BatchRecord, phase: Phase, output: dict[str, Any] | None
) -> dict[str, Any]:
    """The Operation the API returns for a batch from create, get and list."""
    state = state_of(phase)
    failed = batch.failed_before(phase.done)
    ran = 0 if state == "BATCH_STATE_EXPIRED" else phase.done
    moments = [batch.schedule.created, *phase.times.values()]
    metadata: dict[str, Any] = {
        "@type": TYPE_PREFIX + ("EmbedContentBatch" if batch.embed else "GenerateContentBatch"),
        "name": batch.name,
        "model": batch.model,
        "displayName": batch.display_name,
        "inputConfig": batch.input_config,
        "createTime": timestamp(batch.schedule.created),
        "updateTime": timestamp(max(moments)),
        "batchStats": counters(
            requestCount=batch.total,
            successfulRequestCount=ran - min(failed, ran),
            failedRequestCount=min(failed, ran),
            pendingRequestCount=0 if phase.terminal else batch.total - phase.done,
        ),
        "state": state,
        **batch.extra,
    }
    operation: dict[str, Any] = {"name": batch.name, "metadata": metadata}
    if phase.terminal:
        metadata["endTime"] = timestamp(max(moments))
        operation["done"] = True
    if output is not None:
        metadata["output"] = output
    if state == "BATCH_STATE_SUCCEEDED" and output is not None:
        kind = "EmbedContentBatchOutput" if batch.embed else "GenerateContentBatchOutput"
        operation["response"] = {"@type": TYPE_PREFIX + kind, **output}
    elif state == "BATCH_STATE_CANCELLED":
        # The capture saw a cancelled job end with code 13.
        operation["error"] = {"code": 13, "message": "The batch was cancelled."}
    elif state == "BATCH_STATE_EXPIRED":
        operation["error"] = {"code": 4, "message": "The batch expired after 48 hours."}
    return operation
