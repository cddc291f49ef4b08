"""What every emulator's synchronous endpoints share: rate limits that answer 429, a hold
that keeps requests unanswered until a test lets them go, and a record of what was
answered, per request body.

Knobs (`EmulatorConfig`): `max_rpm` and `max_tpm` are requests and tokens per emulated
minute (60 s x `time_scale`, so a test can reach a limit in a second); past either, a
request answers the provider's 429 with a Retry-After of the seconds until the window
has room. `max_realtime_answers` answers that many requests, then holds the next ones
until it is raised; a held request whose client goes away (a killed worker) is dropped,
never answered.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request

from .config import EmulatorConfig, Fault

_RECHECK = 0.02


def json_object(raw: bytes, refused: Callable[[], Exception]) -> dict[str, Any]:
    """A request body that must be a JSON object; else raise the provider's `refused()`."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise refused() from None
    if not isinstance(body, dict):
        raise refused()
    return body


def body_key(raw: bytes) -> str:
    """The key a request body is counted under (its digest)."""
    return hashlib.blake2b(raw, digest_size=12).hexdigest()


class RealtimeGate:
    """Rate limits, hold and counts of one emulator's synchronous endpoints."""

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        self._window: deque[tuple[float, int]] = deque()
        self._window_tokens = 0
        # Per request body: received (past the rate limit) and answered.
        self.received: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        # When each answer went out, and when each request was let through the rate
        # limit (emulator clock). Requests per window are counted on the second: answers
        # of requests let through in different windows can leave together on a busy
        # machine, but a limit judges arrivals.
        self.answered_at: list[float] = []
        self.admitted_at: list[float] = []
        self.limited = 0
        self.held = 0
        self.dropped = 0

    def limit(self, tokens: int) -> Fault | None:
        """The 429 to answer when this request passes `max_rpm` or `max_tpm`, else None
        (and the request counts against the window)."""
        rpm, tpm = self.config.max_rpm, self.config.max_tpm
        now = self.clock()
        if rpm is None and tpm is None:
            self.admitted_at.append(now)
            return None
        span = 60.0 * self.config.time_scale
        while self._window and self._window[0][0] <= now - span:
            self._window_tokens -= self._window.popleft()[1]
        over_rpm = rpm is not None and len(self._window) + 1 > rpm
        over_tpm = tpm is not None and self._window_tokens + tokens > tpm and self._window
        if over_rpm or over_tpm:
            self.limited += 1
            wait = self._window[0][0] + span - now if self._window else span
            # Whole seconds as the providers send them; fractions under a scaled clock.
            return Fault(429, float(math.ceil(wait)) if wait >= 1 else round(max(wait, 1e-3), 3))
        self._window.append((now, tokens))
        self._window_tokens += tokens
        self.admitted_at.append(now)
        return None

    async def admit(self, request: Request, raw: bytes) -> bool:
        """Wait while answers are held; False when the client went away meanwhile (the
        request is dropped, unanswered)."""
        self.received[body_key(raw)] += 1
        if self._may_answer():
            return True
        self.held += 1
        try:
            gone = asyncio.ensure_future(_disconnect(request))
            try:
                # The knob may change from any thread (tests steer the config directly), so
                # the hold looks at it again every few milliseconds rather than on an event.
                while not self._may_answer():
                    done, _ = await asyncio.wait({gone}, timeout=_RECHECK)
                    if done:
                        self.dropped += 1
                        return False
            finally:
                gone.cancel()
        finally:
            self.held -= 1
        return True

    def _may_answer(self) -> bool:
        cap = self.config.max_realtime_answers
        return cap is None or len(self.answered_at) < cap

    def answered(self, raw: bytes) -> None:
        self.answers[body_key(raw)] += 1
        self.answered_at.append(self.clock())

    def snapshot(self) -> dict[str, int]:
        return {
            "received": sum(self.received.values()),
            "answered": len(self.answered_at),
            "distinct_answered": len(self.answers),
            "answered_twice": sum(1 for n in self.answers.values() if n > 1),
            "rate_limited": self.limited,
            "held": self.held,
            "dropped": self.dropped,
        }


async def _disconnect(request: Request) -> None:
    # The body is read already: the next message the server hands over is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass
