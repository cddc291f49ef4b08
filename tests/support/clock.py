"""A clock that tests move forward instead of waiting for time to pass."""

from __future__ import annotations

import time


class ShiftedClock:
    """Wall-clock time plus an offset that only grows.

    The emulators derive a batch's state from their clock and the engine schedules its
    retries on its own, so moving the clock puts a batch at an exact point of its life
    (half-way through processing, past its deadline, past a backoff) at once, where
    sleeping would only make that point likely.
    """

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.offset += seconds
