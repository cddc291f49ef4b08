"""The Anthropic Message Batches wire vocabulary: ids, timestamps, the batch record and its
timeline, and list pages, as Anthropic documents them
(docs.anthropic.com/en/api/creating-message-batches).

A batch's state is a pure function of the clock, the schedule frozen at creation and the
moment a cancel arrived, as in the OpenAI emulator: no background task advances it.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..kit import EmulatorConfig
from .results import CANCELED, EXPIRED, Counts, RowContext

MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def rfc3339(instant: float | None) -> str | None:
    if instant is None:
        return None
    return datetime.fromtimestamp(instant, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Ending:
    """How and when a batch ends: the requests that ran (`cut`), what the rest became."""

    at: float
    cut: int
    reason: str | None


@dataclass
class BatchRecord:
    """One Message Batch: requests on disk, frozen schedule, cancel instant, counters."""

    id: str
    path: Path
    total: int
    created: float
    end: float  # when processing finishes if nothing intervenes
    expires: float
    drain: float  # how long `canceling` lasts
    ctx: RowContext
    cancel_at: float | None = None
    counts: dict[tuple[int, str | None], asyncio.Future[Counts]] = field(default_factory=dict)

    @classmethod
    def plan(
        cls,
        batch_id: str,
        path: Path,
        total: int,
        config: EmulatorConfig,
        now: float,
        flaky: frozenset[str] = frozenset(),
    ) -> BatchRecord:
        return cls(
            id=batch_id,
            path=path,
            total=total,
            created=now,
            end=now + config.scaled(config.in_progress_seconds),
            expires=now + config.scaled(config.completion_window_seconds),
            drain=config.scaled(config.cancelling_seconds),
            ctx=RowContext(batch_id, config.failure_rate, config.seed, flaky),
        )

    def done_at(self, instant: float) -> int:
        """Requests finished by `instant`, growing linearly while processing."""
        span = self.end - self.created
        if instant >= self.end or span <= 0:
            return self.total
        return min(self.total, math.floor(self.total * max(0.0, instant - self.created) / span))

    def ending(self) -> Ending:
        """The end this batch is headed for, given what has happened so far."""
        natural = min(self.end, self.expires)
        if self.cancel_at is not None and self.cancel_at < natural:
            # Requests in flight when the cancel arrived finish; the rest are canceled.
            return Ending(self.cancel_at + self.drain, self.done_at(self.cancel_at), CANCELED)
        if self.expires < self.end:
            return Ending(self.expires, self.done_at(self.expires), EXPIRED)
        return Ending(self.end, self.total, None)

    def status(self, now: float) -> str:
        if now >= self.ending().at:
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"


def render(batch: BatchRecord, now: float, counts: Counts | None, base_url: str) -> dict[str, Any]:
    """The MessageBatch object. Counters stay in `processing` until the batch ends, which
    is the documented contract."""
    status = batch.status(now)
    ended = status == "ended"
    request_counts = (
        counts.as_json()
        if ended and counts is not None
        else {"processing": batch.total, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    )
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": request_counts,
        "ended_at": rfc3339(batch.ending().at) if ended else None,
        "created_at": rfc3339(batch.created),
        "expires_at": rfc3339(batch.expires),
        "archived_at": None,
        "cancel_initiated_at": rfc3339(batch.cancel_at),
        "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
    }


def page(
    newest_first: list[BatchRecord], after_id: str | None, before_id: str | None, limit: int
) -> tuple[list[BatchRecord], bool]:
    """One list page: `after_id` pages towards older batches, `before_id` towards newer."""
    ids = [b.id for b in newest_first]
    if before_id:
        end = ids.index(before_id) if before_id in ids else 0
        start = max(0, end - limit)
        return newest_first[start:end], start > 0
    start = ids.index(after_id) + 1 if after_id in ids else (len(ids) if after_id else 0)
    return newest_first[start : start + limit], start + limit < len(ids)
