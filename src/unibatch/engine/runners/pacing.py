"""Requests-per-minute and tokens-per-minute limits of the real-time runner, as token
buckets shared by every job of one provider and model in a worker process.

A bucket refills continuously at its rate and holds at most a quarter of a second's worth
(at least one unit), so a limit of 600 RPM sends about 10 requests a second and never
600 at once: providers enforce their per-minute limits over shorter windows too (OpenAI's
rate-limit guide: "your rate limit may be quantized"), and requests sent evenly can still
arrive bunched (a slow moment of the sender, the network), so the burst is kept small. A
429 pauses every sender of the bucket for the provider's Retry-After.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Callable

from unibatch.config import RealtimeLimit

# The most a bucket holds, in seconds of its rate.
BURST_SECONDS = 0.25


class Bucket:
    """`per_minute` units a minute; a take larger than the bucket waits for a full bucket
    and leaves it in debt, so one big request slows the ones after it instead of never
    fitting."""

    def __init__(self, per_minute: float, now: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * BURST_SECONDS)
        self.level = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until `amount` may be taken (0: now)."""
        self._refill(now)
        missing = min(amount, self.capacity) - self.level
        return max(0.0, missing / self.rate)

    def take(self, amount: float) -> None:
        self.level -= amount


class Pacer:
    """The limits of one provider and model: callers `acquire` before each send, in turn."""

    def __init__(self, limit: RealtimeLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        now = clock()
        self.requests = Bucket(limit.rpm, now) if limit.rpm else None
        self.tokens = Bucket(limit.tpm, now) if limit.tpm else None
        self.paused_until = 0.0
        # First come, first served: asyncio.Lock wakes its waiters in order.
        self._turn = asyncio.Lock()

    async def acquire(self, tokens: int) -> None:
        """Wait until one more request of about `tokens` tokens fits the limits."""
        async with self._turn:
            while True:
                now = self.clock()
                wait = self.paused_until - now
                if self.requests is not None:
                    wait = max(wait, self.requests.wait(1, now))
                if self.tokens is not None:
                    wait = max(wait, self.tokens.wait(tokens, now))
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests is not None:
                self.requests.take(1)
            if self.tokens is not None:
                self.tokens.take(tokens)

    def settle(self, estimated: int, actual: int) -> None:
        """Take the tokens a request used beyond its estimate, once its usage is known.
        An estimate above the usage is not given back: providers count a request's
        `max_tokens` against the limit when it arrives, used or not."""
        if self.tokens is not None and actual > estimated:
            self.tokens.take(actual - estimated)

    def pause(self, seconds: float) -> None:
        """The provider said 429: nobody sends for `seconds`."""
        self.paused_until = max(self.paused_until, self.clock() + seconds)


# Per event loop (an asyncio.Lock belongs to one), per provider, model and limits.
_pacers: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, RealtimeLimit], Pacer]
] = weakref.WeakKeyDictionary()


def pacer_for(provider: str, model: str, limit: RealtimeLimit) -> Pacer:
    """The pacer every job of `provider/model` in this process shares."""
    loop = asyncio.get_running_loop()
    mine = _pacers.setdefault(loop, {})
    key = (provider, model, limit)
    pacer = mine.get(key)
    if pacer is None:
        pacer = mine[key] = Pacer(limit)
    return pacer
