"""Which API calls answer an injected fault instead of their result, and which requests
of a batch ask to fail."""

from __future__ import annotations

import random
import re
from collections import deque

from .config import EmulatorConfig, Fault


class FaultPlan:
    """Decides which API calls fail: first an explicit queue, then a seeded coin per call.

    The queue makes storms exact (``inject(3)`` fails precisely the next three calls); the
    coin uses ``random.Random(seed)`` so a ``fault_rate`` run is reproducible.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._queue: deque[Fault] = deque()
        self._seed = config.seed
        self._rng = random.Random(config.seed)

    def inject(self, count: int, status: int = 429, retry_after: float | None = None) -> None:
        """Make the next ``count`` API calls answer ``status``."""
        if retry_after is None:
            retry_after = self._config.retry_after
        self._queue.extend(Fault(status, retry_after) for _ in range(count))

    @property
    def pending(self) -> int:
        """Faults still queued."""
        return len(self._queue)

    def draw(self) -> Fault | None:
        """The fault for the call being served, if any."""
        try:
            return self._queue.popleft()
        except IndexError:
            pass
        if self._seed != self._config.seed:
            self._seed = self._config.seed
            self._rng = random.Random(self._seed)
        rate = self._config.fault_rate
        if rate > 0 and self._rng.random() < rate:
            return Fault(self._config.fault_status, self._config.retry_after)
        return None


# A request whose text holds `emulate-error:<status>` fails with that HTTP status, in its
# provider's own per-request error shape: a test picks exactly which rows fail and how,
# whatever ids the provider's wire uses.
REQUEST_ERROR_MARKER = b"emulate-error:"
_REQUEST_ERROR = re.compile(rb"emulate-error:([45]\d\d)")


def requested_error(raw: bytes | str) -> int | None:
    """The HTTP status the request (its raw JSON) asks to fail with, or None.

    Example: a chat request whose user message says ``emulate-error:429``."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if REQUEST_ERROR_MARKER not in data:
        return None
    found = _REQUEST_ERROR.search(data)
    return int(found[1]) if found else None
