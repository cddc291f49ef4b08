"""When to try again: the poll schedule and the backoff after errors."""

from __future__ import annotations

from collections.abc import Sequence


def poll_delay(schedule: Sequence[float], poll_count: int) -> float:
    """The n-th poll waits the n-th entry; the last entry repeats forever."""
    return schedule[min(poll_count, len(schedule) - 1)]


def retry_delay(
    schedule: Sequence[float], attempts: int, retry_after: float | None = None
) -> float:
    """Delay after a transient error: the provider's Retry-After when it gave one,
    else the poll schedule walked by the number of consecutive failures."""
    if retry_after is not None:
        return retry_after
    return poll_delay(schedule, max(attempts - 1, 0))
