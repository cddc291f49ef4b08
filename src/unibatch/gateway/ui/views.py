"""What the dashboard's pages show of a batch or a request: plain dicts for the templates
and for the progress endpoint the pages poll."""

from __future__ import annotations

import time
from typing import Any

import orjson

from unibatch import codec
from unibatch.types import Batch

# Request and response bodies are cut to this many characters on a page.
BODY_CHARS = 4000


def duration(seconds: float) -> str:
    """ "42s", "7m", "3h 5m", "2d 4h": short enough for a table cell."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def eta(batch: Batch, now: float) -> str | None:
    """Time left at the pace so far (requests done per second since it was sent); None
    once it has ended or before anything is done."""
    counts = batch.request_counts
    done = counts.total - counts.pending
    if batch.done or done <= 0 or counts.pending <= 0:
        return None
    elapsed = now - (batch.submitted_at or batch.created_at)
    return duration(elapsed * counts.pending / done)


def progress(batch: Batch, now: float | None = None) -> dict[str, Any]:
    """The figures a batch's row and page show, and the progress endpoint returns."""
    counts = batch.request_counts
    done = counts.total - counts.pending
    return {
        "id": batch.id,
        "status": batch.status.value,
        "done": batch.done,
        "total": counts.total,
        "finished": done,
        "percent": round(100.0 * done / counts.total, 1) if counts.total else 0.0,
        "counts": counts.as_dict(),
        "cost": f"${batch.cost.total:.4f}",
        "eta": eta(batch, now or time.time()) or "",
        "providers": ", ".join(batch.providers),
    }


def pretty(blob: bytes | None) -> str:
    """A packed JSON body, indented and cut to `BODY_CHARS`; "" for none."""
    if blob is None:
        return ""
    text = orjson.dumps(codec.unpack(blob), option=orjson.OPT_INDENT_2).decode()
    return text if len(text) <= BODY_CHARS else text[:BODY_CHARS] + "\n… (cut)"


def request_row(row: dict[str, Any]) -> dict[str, Any]:
    """One request of the request list, its result beside it."""
    cost = None
    if row["cost_input"] is not None and row["status"] is not None:
        cost = f"${float(row['cost_input']) + float(row['cost_output'] or 0.0):.6f}"
    return {
        "seq": row["seq"],
        "custom_id": row["custom_id"],
        "model": f"{row['provider']}/{row['model']}",
        "attempts": row["attempts"],
        "status": row["status"] or "pending",
        "status_code": row["status_code"],
        "error": (
            f"{row['error_code']}: {row['error_message']}" if row["error_code"] is not None else ""
        ),
        "retryable": row["retryable"],
        "tokens": (
            f"{row['input_tokens']} in / {row['output_tokens']} out" if row["status"] else ""
        ),
        "cost": cost or "",
        "request": pretty(row["request"]),
        "response": pretty(row["response"]),
    }
