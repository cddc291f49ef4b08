"""Where a batch is in its life at a given instant, computed from its frozen schedule.

The phases are OpenAI's (validating, in_progress, finalizing, ...); emulators of other
providers map them onto their own states. No background task advances a batch: its status
is a pure function of the clock, the schedule fixed at creation, the validation outcome and
the moment a cancel arrived. That keeps the emulator deterministic and lets a test reason
about timing from the knobs alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .config import EmulatorConfig

# What the requests a batch never ran are marked with (OpenAI's row error codes).
EXPIRED = "batch_expired"
CANCELLED = "batch_cancelled"
TERMINAL = frozenset({"failed", "completed", "expired", "cancelled"})


@dataclass(frozen=True)
class Schedule:
    """Absolute instants (Unix seconds, float) of one batch's planned life."""

    created: float
    validating_end: float
    in_progress_end: float
    finalizing_end: float
    deadline: float  # end of the completion window
    drain: float  # how long `cancelling` lasts

    @classmethod
    def plan(
        cls,
        config: EmulatorConfig,
        created: float,
        *,
        hold: bool = False,
        window: float = 24 * 3600.0,
    ) -> Schedule:
        """Freeze the knobs in force at creation into a schedule; one that is `hold` never
        leaves in_progress (until a cancel, or the end of its window). `window` is the
        completion window the batch asked for (unscaled): `completion_window_seconds`
        stands for a 24 h window, and a longer one lasts as many times longer."""
        validating_end = created + config.scaled(config.validating_seconds)
        in_progress_end = (
            math.inf if hold else validating_end + config.scaled(config.in_progress_seconds)
        )
        return cls(
            created=created,
            validating_end=validating_end,
            in_progress_end=in_progress_end,
            finalizing_end=in_progress_end + config.scaled(config.finalizing_seconds),
            deadline=created
            + config.scaled(config.completion_window_seconds * window / (24 * 3600.0)),
            drain=config.scaled(config.cancelling_seconds),
        )

    @property
    def expires_at(self) -> float:
        # Validation always finishes, even with a window shorter than validating itself.
        return max(self.deadline, self.validating_end)

    @property
    def will_expire(self) -> bool:
        return self.expires_at < self.in_progress_end

    def done_at(self, instant: float, total: int) -> int:
        """Requests finished by ``instant``, growing linearly across in_progress."""
        span = self.in_progress_end - self.validating_end
        if instant >= self.in_progress_end or span <= 0:
            return total
        fraction = max(0.0, instant - self.validating_end) / span
        return min(total, math.floor(total * fraction))


@dataclass(frozen=True)
class Phase:
    """Status at one instant, the requests finished, and the timestamps reached."""

    status: str
    done: int = 0
    reason: str | None = None  # what the unfinished rows are marked with
    times: dict[str, float] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def phase_at(
    s: Schedule, now: float, total: int | None, valid: bool | None, cancelling_at: float | None
) -> Phase:
    """The batch's phase at ``now``.

    ``total``/``valid`` come from validation and may be ``None`` only while no decision
    depends on them (before the end of validating, with no cancel).
    """
    c = cancelling_at
    if c is not None and c < s.validating_end:
        # Cancelled while validating: nothing ran; the rows (if the file is valid) are
        # all reported as cancelled.
        if now < c + s.drain:
            return Phase("cancelling", 0, None, {"cancelling_at": c})
        times = {"cancelling_at": c, "cancelled_at": c + s.drain}
        return Phase("cancelled", 0, CANCELLED, times)
    if now < s.validating_end:
        return Phase("validating")
    if total is None or not valid:
        return Phase("failed", 0, None, {"failed_at": s.validating_end})
    times = {"in_progress_at": s.validating_end}
    expiring = s.will_expire and (c is None or c >= s.expires_at)
    if expiring and now >= s.expires_at:
        times["expired_at"] = s.expires_at
        return Phase("expired", s.done_at(s.expires_at, total), EXPIRED, times)
    if c is not None:
        times["cancelling_at"] = c
        if c >= s.in_progress_end:
            times["finalizing_at"] = s.in_progress_end
        done = s.done_at(c, total)
        if now < c + s.drain:
            return Phase("cancelling", done, None, times)
        times["cancelled_at"] = c + s.drain
        return Phase("cancelled", done, CANCELLED, times)
    if now < s.in_progress_end:
        return Phase("in_progress", s.done_at(now, total), None, times)
    times["finalizing_at"] = s.in_progress_end
    if now < s.finalizing_end:
        return Phase("finalizing", total, None, times)
    times["completed_at"] = s.finalizing_end
    return Phase("completed", total, None, times)


def planned_end(s: Schedule, total: int) -> tuple[int, str | None]:
    """The cut and reason the batch will end with if nobody cancels it."""
    if s.will_expire:
        return s.done_at(s.expires_at, total), EXPIRED
    return total, None
