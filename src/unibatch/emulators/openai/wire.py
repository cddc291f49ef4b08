"""The OpenAI wire vocabulary: file/batch records and their JSON, list pages.

Kept apart from the emulator's request handling so the shapes a client sees are in one
place, next to the API reference they copy (platform.openai.com/docs/api-reference/batch).
"""

from __future__ import annotations

import asyncio
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request

from ..kit.timeline import Phase, Schedule
from .errors import OpenAIError
from .fakes import Usage
from .results import RowContext, Summary
from .validate import LineError, Scan

UPLOAD_PURPOSES = frozenset({"assistants", "batch", "fine-tune", "vision", "user_data", "evals"})
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
FILE_TTL = 30 * 86400
_ALPHABET = string.ascii_letters + string.digits


@dataclass
class FileRecord:
    """A file as the Files API reports it; its bytes are on disk or generated from a batch."""

    id: str
    purpose: str
    filename: str
    bytes: int
    created_at: int
    expires_at: int | None
    path: Path | None = None  # uploaded content on disk
    batch_id: str | None = None  # or: a result file generated from this batch
    output: bool = True  # output file (True) or error file (False)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": self.expires_at,
            "status_details": None,
        }


@dataclass
class BatchRecord:
    """What the emulator keeps per batch: its request, frozen schedule and pending passes."""

    id: str
    endpoint: str
    input_file_id: str
    metadata: dict[str, str] | None
    output_ttl: int
    schedule: Schedule
    ctx: RowContext
    input_path: Path | None
    # Fails validation whatever its file holds (the `fail_batches` knob).
    fail: bool = False
    # Refused for a queue limit: fails validation with this error.
    refusal: LineError | None = None
    scan: asyncio.Future[Scan] | None = None
    cancelling_at: float | None = None
    summaries: dict[tuple[int, str | None], asyncio.Future[Summary]] = field(default_factory=dict)
    final: tuple[int, str | None] | None = None  # the cut the published files were made from
    output_file_id: str | None = None
    error_file_id: str | None = None
    completion_window: str = "24h"  # as the create request wrote it


def new_file_id() -> str:
    """``file-`` and 22 base62 characters, like the real ids."""
    return "file-" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def plus(base: int, delta: int | None) -> int | None:
    """``base + delta``, or ``None`` when there is no delta (files that never expire)."""
    return None if delta is None else base + delta


def parse_limit(request: Request, *, default: int, maximum: int) -> int:
    """The ``limit`` query parameter; raises the 400 for an out-of-range one."""
    raw = request.query_params.get("limit")
    try:
        limit = default if raw is None else int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= maximum:
        msg = f"Invalid 'limit': expected an integer between 1 and {maximum}."
        raise OpenAIError(400, msg, param="limit", code="invalid_value")
    return limit


_Item = TypeVar("_Item", FileRecord, BatchRecord)


def cursor_page(items: list[_Item], after: str | None, limit: int) -> tuple[list[_Item], bool]:
    """The ``limit`` items following the one with id ``after``, and whether more remain."""
    start = 0
    if after:
        ids = [item.id for item in items]
        start = ids.index(after) + 1 if after in ids else len(items)
    return items[start : start + limit], start + limit < len(items)


def list_envelope(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's cursor-list envelope."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def render_batch(
    batch: BatchRecord, phase: Phase, scan: Scan | None, summary: Summary | None
) -> dict[str, Any]:
    """The Batch object as the API returns it, for the phase observed."""
    valid = scan is not None and scan.error is None
    total = scan.total if scan is not None and valid else 0
    completed = failed = 0
    if summary is not None and phase.status in ("completed", "expired"):
        completed, failed = summary.succeeded, summary.error_rows
    elif phase.status in ("in_progress", "finalizing", "cancelling") and scan is not None:
        # Spread the known failures evenly over the finished part while running.
        failed = round(phase.done * scan.failures / total) if total else 0
        completed = phase.done - failed
    # On `cancelled` the real API resets completed/failed to 0 (capture); emulate that so
    # clients count results from the files, as they must.
    usage = summary.usage if summary is not None else Usage()
    stamps = {k: int(v) for k, v in phase.times.items()}
    created = int(batch.schedule.created)
    window = round(batch.schedule.deadline - batch.schedule.created)  # the window, scaled
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": scan.model if scan is not None else None,
        "errors": (
            {"object": "list", "data": [scan.error.as_json()]}
            if phase.status == "failed" and scan is not None and scan.error is not None
            else None
        ),
        "input_file_id": batch.input_file_id,
        "completion_window": batch.completion_window,
        "status": phase.status,
        "output_file_id": batch.output_file_id if phase.terminal else None,
        "error_file_id": batch.error_file_id if phase.terminal else None,
        "created_at": created,
        "in_progress_at": stamps.get("in_progress_at"),
        "expires_at": created + window,
        "finalizing_at": stamps.get("finalizing_at"),
        "completed_at": stamps.get("completed_at"),
        "failed_at": stamps.get("failed_at"),
        "expired_at": stamps.get("expired_at"),
        "cancelling_at": stamps.get("cancelling_at"),
        "cancelled_at": stamps.get("cancelled_at"),
        "request_counts": {"total": total, "completed": completed, "failed": failed},
        "usage": usage.as_json(),
        "metadata": batch.metadata,
    }
