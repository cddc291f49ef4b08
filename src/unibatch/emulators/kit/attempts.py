"""Requests that fail on some attempts only: a retry policy's test bench.

With ``retryable_failure_rate`` set, each batch an emulator creates counts, per request,
the how-manyth batch of this emulator holds that request: its attempt. A request is known
again by its custom_id (OpenAI, xAI), its key (Gemini), or, where a client's ids name the
batch (unibatch's Anthropic ids carry the job), by its content. The request fails on that
attempt, with the provider's retryable server error, when a coin drawn from ``seed``, its
key and the attempt falls under the rate. The same sequence of submissions therefore
fails the same requests on the same attempts every run, and a test can say in advance how
many attempts each request needs (:func:`attempts_needed`).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from .fakes import unit


def fails_on_attempt(seed: int, custom_id: str, attempt: int, rate: float) -> bool:
    """Whether the request fails on its `attempt`-th batch (1-based)."""
    return rate > 0 and unit(seed, "retryable", custom_id, attempt) < rate


def attempts_needed(seed: int, custom_id: str, rate: float, limit: int = 64) -> int:
    """The first attempt on which the request succeeds (at most `limit`)."""
    attempt = 1
    while attempt < limit and fails_on_attempt(seed, custom_id, attempt, rate):
        attempt += 1
    return attempt


class AttemptCounter:
    """How many batches of one emulator have held each custom_id (kept only while the
    rate is above zero, so an emulator without the knob keeps nothing)."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def failing(self, custom_ids: Iterable[str], rate: float, seed: int) -> frozenset[str]:
        """Count one more attempt of each request of a new batch; those that fail on it."""
        if rate <= 0:
            return frozenset()
        out = set()
        with self._lock:
            for custom_id in custom_ids:
                self._seen[custom_id] += 1
                if fails_on_attempt(seed, custom_id, self._seen[custom_id], rate):
                    out.add(custom_id)
        return frozenset(out)

    def seen(self, custom_id: str) -> int:
        with self._lock:
            return self._seen[custom_id]


def request_keys(path: Path | None, key: Callable[[dict[str, Any]], str]) -> Iterator[str]:
    """`key` of each request of a JSONL file; lines that are not requests are skipped
    (the provider's own validation reports them)."""
    if path is None:
        return
    with path.open("rb") as handle:
        for line in handle:
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                yield key(obj)


def by_custom_id(request: dict[str, Any]) -> str:
    return str(request.get("custom_id"))
