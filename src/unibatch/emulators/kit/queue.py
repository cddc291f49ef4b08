"""A provider's batch queue limits, as the emulators enforce them.

Three knobs (`EmulatorConfig.max_enqueued_tokens` per model, `max_queued_requests` and
`max_concurrent_batches` per account) bound what batches not yet ended may hold. A batch
is counted from its create until the end of its schedule (or of its cancel); one that
would pass a limit is refused, each provider in its own way (OpenAI fails it in
validation with `token_limit_exceeded`; Anthropic and Gemini answer the create with a
429). The gate records the most it ever held, so a test can assert a limit was never
passed.

Tokens are counted as the engine counts them (`unibatch.engine.queue_tokens`): an
emulator of OpenAI's models counts with the model's tokenizer, as OpenAI does; the
others with the engine's approximation (about four characters of text a token), standing
for a tokenizer of their own that nobody outside the provider has.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from unibatch.engine.queue_tokens import input_tokens

from .config import EmulatorConfig

ENQUEUED_TOKENS = "enqueued_tokens"
QUEUED_REQUESTS = "queued_requests"
CONCURRENT_BATCHES = "concurrent_batches"
_WORDS = {
    ENQUEUED_TOKENS: "enqueued tokens",
    QUEUED_REQUESTS: "batch requests waiting in the processing queue",
    CONCURRENT_BATCHES: "concurrent batch jobs",
}


@dataclass
class Usage:
    """What one batch holds of the queue, and until when."""

    model: str
    tokens: int
    requests: int
    until: float = float("inf")


def usage_of_lines(lines: Any, body_of: Any = None, provider: str = "") -> Usage:
    """The queue usage of parsed request lines (the body under `body`, or `body_of(line)`),
    counted as the engine counts `provider`'s requests with the tokenizer it has."""
    model, tokens, count = "", 0, 0
    for line in lines:
        body = body_of(line) if body_of is not None else line.get("body")
        if not isinstance(body, dict):
            continue
        model = model or str(body.get("model") or "")
        endpoint = str(line.get("url") or "") if isinstance(line, dict) else ""
        tokens += input_tokens(provider, model, endpoint, body, exact=True)
        count += 1
    return Usage(model, tokens, count)


def usage_of_file(path: Path, key: str | None = "body", provider: str = "") -> Usage:
    """The queue usage of a JSONL file of requests: each line's `key` is the request
    (OpenAI's `body`, Anthropic's `params`), or the whole line when `key` is None."""

    def lines() -> Any:
        with path.open("rb") as handle:
            for raw in handle:
                if raw.strip():
                    try:
                        yield orjson.loads(raw)
                    except orjson.JSONDecodeError:
                        continue

    return usage_of_lines(lines(), lambda line: line if key is None else line.get(key), provider)


class QueueGate:
    """The batches a provider holds in its queue, checked against the knobs."""

    def __init__(self, config: EmulatorConfig, provider: str = "") -> None:
        self.config = config
        # Whose tokenizer counts the requests (`usage_of_lines`).
        self.provider = provider
        self.held: dict[str, Usage] = {}
        self.peak_tokens: Counter[str] = Counter()
        self.peak_requests = 0
        self.peak_batches = 0
        self.refused: Counter[str] = Counter()
        # The usage of the batch last looked at (its model names a refusal).
        self.last = Usage("", 0, 0)

    @property
    def active(self) -> bool:
        c = self.config
        return any(
            v is not None
            for v in (c.max_enqueued_tokens, c.max_queued_requests, c.max_concurrent_batches)
        )

    def _live(self, now: float) -> list[Usage]:
        return [u for u in self.held.values() if u.until > now]

    def admit(self, batch_id: str, usage: Usage, now: float) -> str | None:
        """Hold `usage` for a new batch, or the limit it would pass (then nothing is held)."""
        self.last = usage
        live = self._live(now)
        tokens = sum(u.tokens for u in live if u.model == usage.model) + usage.tokens
        requests = sum(u.requests for u in live) + usage.requests
        batches = len(live) + 1
        c = self.config
        for kind, value, limit in (
            (ENQUEUED_TOKENS, tokens, c.max_enqueued_tokens),
            (QUEUED_REQUESTS, requests, c.max_queued_requests),
            (CONCURRENT_BATCHES, batches, c.max_concurrent_batches),
        ):
            if limit is not None and value > limit:
                self.refused[kind] += 1
                return kind
        self.held[batch_id] = usage
        self.peak_tokens[usage.model] = max(self.peak_tokens[usage.model], tokens)
        self.peak_requests = max(self.peak_requests, requests)
        self.peak_batches = max(self.peak_batches, batches)
        return None

    def release(self, batch_id: str, at: float) -> None:
        """The batch leaves the queue at `at` (its end, or the end of its cancel)."""
        usage = self.held.get(batch_id)
        if usage is not None:
            usage.until = min(usage.until, at)

    def limit(self, kind: str) -> int | None:
        return getattr(self.config, f"max_{kind}")  # type: ignore[no-any-return]

    async def enter(
        self, batch_id: str, path: Path, key: str | None, until: float, now: float
    ) -> str | None:
        """`admit` for a batch whose requests are in the JSONL file `path` (read in a
        thread), held until `until`; the limit refused, or None (also when no knob is set)."""
        if not self.active:
            return None
        usage = await asyncio.to_thread(usage_of_file, path, key, self.provider)
        usage.until = until
        return self.admit(batch_id, usage, now)

    def refusal(self, kind: str) -> str:
        """The words of a refusal for `kind`, with its limit."""
        return f"{_WORDS[kind]} over the limit of {self.limit(kind):,}"

    def snapshot(self) -> dict[str, Any]:
        return {
            "peak_enqueued_tokens": dict(self.peak_tokens),
            "peak_queued_requests": self.peak_requests,
            "peak_concurrent_batches": self.peak_batches,
            "refused": dict(self.refused),
        }
