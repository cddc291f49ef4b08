"""Completion handlers used by the tests, importable as `tests.support.handlers:...`.

They append to the file named by UNIBATCH_TEST_HANDLER_LOG, so tests (and subprocess
workers) can count calls.
"""

from __future__ import annotations

import os
from pathlib import Path

from unibatch.types import Batch


def _log() -> Path:
    return Path(os.environ["UNIBATCH_TEST_HANDLER_LOG"])


def record(batch: Batch) -> None:
    with _log().open("a") as handle:
        handle.write(f"{batch.id} {batch.status.value} {batch.request_counts.succeeded}\n")


def fail_first(batch: Batch) -> None:
    """Raises on its first call for a batch, succeeds afterwards."""
    marker = _log().with_suffix(f".{batch.id}.failed")
    if not marker.exists():
        marker.write_text("raised once")
        raise RuntimeError("handler failure on purpose")
    record(batch)
