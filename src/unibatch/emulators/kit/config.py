"""The knobs every emulator shares, and the shape of one injected HTTP fault.

One :class:`EmulatorConfig` is shared by all providers a server mounts, so a test steers
them all at once (``POST {prefix}/_emulator/config``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Knobs that may not change over HTTP: the data directory is fixed once files exist in it.
_FROZEN_KNOBS = frozenset({"data_dir"})
_INTEGER_KNOBS = frozenset({"fault_status", "seed", "fail_batches", "hold_batches"})


@dataclass
class EmulatorConfig:
    """Every knob of the emulators; one instance is shared by all providers a server mounts.

    Durations are in seconds and multiplied by ``time_scale`` (0.1 = ten times faster); the
    schedule of a batch is frozen when it is created, so a change affects only new batches.

    Example::

        config = EmulatorConfig(time_scale=0.05, failure_rate=0.1)
        config.update({"fault_rate": 0.2})      # what POST {prefix}/_emulator/config does
    """

    time_scale: float = 1.0
    validating_seconds: float = 0.5
    in_progress_seconds: float = 1.5
    finalizing_seconds: float = 0.5
    cancelling_seconds: float = 0.5
    completion_window_seconds: float = 86400.0
    failure_rate: float = 0.0
    # Share of requests that fail with a retryable server error on each attempt, drawn
    # afresh per attempt (`kit.attempts`), so a retry can succeed where `failure_rate`
    # fails the same requests every time.
    retryable_failure_rate: float = 0.0
    # The next this many new batches fail validation as a whole (OpenAI: status `failed`
    # with one `errors` entry), then batches validate as usual again.
    fail_batches: int = 0
    # The next this many new batches stay `in_progress` without finishing a request until
    # they are cancelled or their completion window ends: a provider that is stuck.
    hold_batches: int = 0
    fault_rate: float = 0.0
    fault_status: int = 429
    retry_after: float = 1.0
    slow_seconds: float = 0.0
    create_delay: float = 0.0
    download_chunk_delay: float = 0.0
    max_requests_per_batch: int | None = None
    # The fewest records a Bedrock job takes (None: the service's default of 100).
    min_batch_records: int | None = None
    max_file_bytes: int | None = None
    # Queue limits (`kit.queue`): input tokens per model, requests and batches of every
    # batch not yet ended. A batch past one is refused as the provider refuses it.
    max_enqueued_tokens: int | None = None
    max_queued_requests: int | None = None
    max_concurrent_batches: int | None = None
    # Synchronous endpoints: requests and tokens per emulated minute (60 s x time_scale)
    # before a 429; answers given before the next requests are held (`kit.realtime`).
    max_rpm: int | None = None
    max_tpm: int | None = None
    max_realtime_answers: int | None = None
    seed: int = 0
    data_dir: Path | None = None

    @property
    def download_chunk_bytes(self) -> int:
        """Network chunk of a file download: small when paced, so a test can stop a
        client mid-file; large otherwise, so serving costs few thread hops."""
        return 64 * 1024 if self.download_chunk_delay > 0 else 256 * 1024

    def take(self, knob: str) -> bool:
        """Use up one of the counted batches of `knob` (`fail_batches`, `hold_batches`):
        whether a new batch is one of them."""
        left = int(getattr(self, knob))
        if left > 0:
            setattr(self, knob, left - 1)
        return left > 0

    def scaled(self, seconds: float) -> float:
        """A lifecycle duration after ``time_scale``."""
        return seconds * self.time_scale

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update, all or nothing; raises ``ValueError`` on a bad key or value."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        coerced: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError(f"unknown knob {key!r}")
            if key in _FROZEN_KNOBS:
                raise ValueError(f"knob {key!r} cannot change at runtime")
            coerced[key] = _coerce(key, value, nullable=key.startswith(("max_", "min_")))
        for key, value in coerced.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        """The knobs as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["data_dir"] = str(self.data_dir) if self.data_dir is not None else None
        return out


def _coerce(key: str, value: Any, *, nullable: bool) -> Any:
    if value is None and nullable:
        return None
    integer = key in _INTEGER_KNOBS or key.startswith(("max_", "min_"))
    # bool is an int subclass; "true" for a rate is a caller bug worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"knob {key!r} needs a number, got {value!r}")
    if integer:
        if value != int(value):
            raise ValueError(f"knob {key!r} needs an integer, got {value!r}")
        if key == "fault_status" and not 400 <= value <= 599:
            raise ValueError(f"knob 'fault_status' must be an HTTP error status, got {value!r}")
        return int(value)
    if value < 0 or (key.endswith("_rate") and value > 1):
        raise ValueError(f"knob {key!r} out of range: {value!r}")
    return float(value)


@dataclass(frozen=True)
class Fault:
    """One HTTP fault to answer instead of the real response."""

    status: int
    retry_after: float | None
