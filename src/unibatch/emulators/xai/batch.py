"""One xAI batch in the emulator: its input on disk, its frozen schedule, and the outcome of
every request at any instant, as a pure function of the clock.

xAI has no status enum, only counters, so the whole life of a batch is the answer to one
question: at time `now`, which requests have run, which were cancelled, which are pending?
Requests finish one after another across the in-progress span; a cancel, xAI's own cancel
or expiry stops the batch. Requests running when a user's cancel lands are first counted
as cancelled and then, after `cancelling_seconds`, as succeeded: the counters revert, as
the capture saw.
"""

from __future__ import annotations

import datetime as dt
import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from unibatch.providers.xai.rules import RULES

from ..kit.fakes import hex_digest, unit
from ..kit.faults import requested_error
from ..openai.fakes import FAKERS

# Per-request outcome decided at ingestion (one byte each, so a million requests cost 1 MB).
OK, EMULATED_FAILURE, BAD_MAX_TOKENS, RULE_BROKEN, ASKED_ERROR, FLAKY = 0, 1, 2, 3, 4, 5
CANCELLED_ERROR = "Batch cancelled"
FAILURE_MESSAGE = "Emulated request failure (failure_rate): the model could not serve it"
# The bare error string of a request that asks to fail (`emulate-error:<status>`), in the
# words of the gRPC status xAI's errors name.
_ASKED_MESSAGES = {
    400: "Client specified an invalid argument (emulated)",
    401: "Request not authenticated (emulated)",
    403: "The caller does not have permission to execute the specified operation (emulated)",
    404: "Some requested entity was not found (emulated)",
    429: "Resource exhausted: too many requests (emulated)",
    500: "Internal error (emulated)",
    503: "The service is currently unavailable (emulated)",
    504: "Deadline exceeded (emulated)",
}


def asked_message(body: dict[str, Any]) -> str:
    status = requested_error(orjson.dumps(body)) or 500
    fallback = _ASKED_MESSAGES[500 if status >= 500 else 400]
    return _ASKED_MESSAGES.get(status, fallback)


@dataclass(frozen=True)
class Timeline:
    """Absolute instants (Unix seconds) frozen at creation."""

    created: float
    ingest_end: float  # counters stay at 0 until the file is ingested
    run_end: float  # every request has run by then
    expire_at: float
    drain: float  # how long requests in flight at a cancel keep running
    xai_cancel_at: float | None = None
    xai_cancel_message: str | None = None

    def done_at(self, instant: float, total: int) -> int:
        """Requests finished by `instant`, growing linearly across the run."""
        span = self.run_end - self.ingest_end
        if instant >= self.run_end or span <= 0:
            return total
        fraction = max(0.0, instant - self.ingest_end) / span
        return min(total, math.floor(total * fraction))


@dataclass(frozen=True)
class View:
    """A batch at one instant: `ran` requests have a result, the rest are cancelled
    (`stopped`) or pending."""

    total: int
    ran: int
    stopped: bool
    cancel_time: float | None = None
    xai_message: str | None = None

    @property
    def pending(self) -> int:
        return 0 if self.stopped else self.total - self.ran

    @property
    def word(self) -> str:
        """A status for the emulator's control endpoint only: xAI itself reports none."""
        if self.xai_message:
            return "cancelled_by_xai"
        if self.cancel_time is not None:
            return "cancelled"
        if self.stopped:
            return "expired"
        if self.total == 0:
            return "ingesting"
        return "in_progress" if self.pending else "completed"


@dataclass
class XAIBatch:
    """What the emulator keeps per batch; request lines stay on disk, found by offset."""

    id: str
    name: str
    key_id: str
    input_file_id: str | None
    path: Path | None
    timeline: Timeline
    failure_rate: float
    seed: int
    offsets: array[int] = field(default_factory=lambda: array("q"))
    kinds: bytearray = field(default_factory=bytearray)
    invalid: str | None = None  # xAI's message when the file failed validation
    inline_ids: dict[str, str] | None = None  # inline mode: id -> digest of its request
    cancel_at: float | None = None

    @property
    def total(self) -> int:
        return len(self.offsets)

    def view(self, now: float) -> View:
        t = self.timeline
        if self.invalid is not None:
            return View(0, 0, True, xai_message=self.invalid)
        n = self.total
        stops = [
            (at, kind)
            for at, kind in (
                (self.cancel_at, "user"),
                (t.xai_cancel_at, "xai"),
                (t.expire_at if t.expire_at < t.run_end else None, "expiry"),
            )
            if at is not None and at <= now
        ]
        if not stops:
            if now < t.ingest_end:
                return View(0, 0, False)
            return View(n, t.done_at(now, n), False)
        at, kind = min(stops)
        ran = t.done_at(at, n)
        if kind == "user":
            if now >= at + t.drain:
                ran = t.done_at(at + t.drain, n)  # the in-flight ones landed after all
            return View(n, ran, True, cancel_time=at)
        if kind == "xai":
            return View(n, ran, True, xai_message=t.xai_cancel_message)
        return View(n, ran, True)

    def counters(self, view: View) -> dict[str, int]:
        errors = len(self.kinds[: view.ran]) - self.kinds[: view.ran].count(OK)
        return {
            "num_requests": view.total,
            "num_pending": view.pending,
            "num_success": view.ran - errors,
            "num_error": errors,
            "num_cancelled": view.total - view.ran if view.stopped else 0,
        }

    def index_at(self, position: int) -> int:
        """The request listed at `position` of the results: not input order (xAI does not
        promise any) but a fixed stride through it, so clients assuming either order get caught."""
        n = self.total
        if n <= 2:
            return n - 1 - position
        stride = n // 2 + 1
        while math.gcd(stride, n) != 1:
            stride += 1
        return (position * stride) % n

    def line(self, fh: BinaryIO, index: int) -> dict[str, Any]:
        """Request `index` of the input, read from the open input file `fh`."""
        fh.seek(self.offsets[index])
        return dict(orjson.loads(fh.readline()))

    def metadata(self, fh: BinaryIO, index: int, view: View) -> dict[str, Any]:
        """The entry `GET …/requests` lists for one request."""
        line = self.line(fh, index)
        body = line.get("body") or {}
        if index < view.ran:
            state = "succeeded" if self.kinds[index] == OK else "failed"
        else:
            state = "cancelled" if view.stopped else "pending"
        return {
            "batch_request_id": self.request_id(index, line),
            "endpoint": line.get("url", "/v1/chat/completions"),
            "model": body.get("model"),
            "state": state,
            "create_time": day(self.timeline.created),
            # Finish times are not tracked per request.
            "finish_time": None,
        }

    def request_id(self, index: int, line: dict[str, Any]) -> str:
        custom_id = line.get("custom_id")
        if isinstance(custom_id, str):
            return custom_id
        digest = hex_digest(self.id, index, size=16)
        return f"batch_request_{_uuid(digest)}"

    def result(self, fh: BinaryIO, index: int, view: View) -> dict[str, Any] | None:
        """The entry `GET …/results` lists for one request, or None while it is pending."""
        line = self.line(fh, index)
        rid = self.request_id(index, line)
        if index >= view.ran:
            if not view.stopped:
                return None
            return {"batch_request_id": rid, "batch_result": {"error": CANCELLED_ERROR}}
        kind = self.kinds[index]
        body = line.get("body") or {}
        if kind == BAD_MAX_TOKENS:
            limit = body.get("max_tokens", body.get("max_completion_tokens"))
            message = (
                f"Maximum number of tokens max_tokens must be positive but max_tokens = {limit}"
            )
            return {"batch_request_id": rid, "batch_result": {"error": message}}
        if kind == EMULATED_FAILURE:
            return {"batch_request_id": rid, "batch_result": {"error": FAILURE_MESSAGE}}
        if kind == FLAKY:  # fails on this attempt (`retryable_failure_rate`)
            return {"batch_request_id": rid, "batch_result": {"error": _ASKED_MESSAGES[500]}}
        if kind == ASKED_ERROR:
            return {"batch_request_id": rid, "batch_result": {"error": asked_message(body)}}
        if kind == RULE_BROKEN:
            return {"batch_request_id": rid, "batch_result": {"error": rule_error(body)}}
        completion = fake_completion(body, hex_digest(self.id, rid), int(self.timeline.created))
        return {
            "batch_request_id": rid,
            "batch_result": {"response": {"chat_get_completion": completion}},
        }


def day(instant: float | None) -> str | None:
    """REST timestamps are date-only strings (capture, LiteLLM)."""
    if instant is None:
        return None
    return dt.datetime.fromtimestamp(instant, dt.UTC).date().isoformat()


def _uuid(hex32: str) -> str:
    h = hex32.ljust(32, "0")
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def request_kind(body: dict[str, Any], custom_id: str, seed: int, failure_rate: float) -> int:
    if requested_error(orjson.dumps(body)) is not None:
        return ASKED_ERROR
    limit = body.get("max_tokens", body.get("max_completion_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and limit <= 0:
        return BAD_MAX_TOKENS
    if rule_error(body) is not None:
        return RULE_BROKEN
    if failure_rate > 0 and unit(seed, "fail", custom_id) < failure_rate:
        return EMULATED_FAILURE
    return OK


def rule_error(body: dict[str, Any]) -> str | None:
    """The error a request gets for breaking one of xAI's rules for its model (the rules
    unibatch's translation reads too)."""
    for violation in RULES.violations(body, str(body.get("model") or "")):
        return violation.provider_message
    return None


def _reasons(model: str) -> bool:
    return "non-reasoning" not in model and model.startswith(("grok-3-mini", "grok-4"))


def fake_completion(body: dict[str, Any], rid: str, created: int) -> dict[str, Any]:
    """A deterministic xAI chat completion: OpenAI's fake reshaped to xAI's batch wire,
    where reasoning tokens are *not* part of `completion_tokens` (capture)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        # `/v1/responses` lines run on the chat wire too (capture); give the fake a message.
        messages = [{"role": "user", "content": body.get("input") or ""}]
    chat_body = {**body, "messages": messages, "n": 1}
    response, _ = FAKERS["/v1/chat/completions"](chat_body, rid, created)
    usage = response["usage"]
    model = str(body.get("model"))
    reasoning = 2 * usage["completion_tokens"] if _reasons(model) else 0
    usage["completion_tokens_details"] = {
        "reasoning_tokens": reasoning,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    }
    usage["prompt_tokens_details"]["text_tokens"] = usage["prompt_tokens"]
    usage["prompt_tokens_details"]["image_tokens"] = 0
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"] + reasoning
    usage["num_sources_used"] = 0
    # 1 tick = 1e-10 USD (capture); a flat fake rate of $1 / $3 per million tokens.
    usage["cost_in_usd_ticks"] = (
        usage["prompt_tokens"] * 10_000 + (usage["completion_tokens"] + reasoning) * 30_000
    )
    choice = response["choices"][0]
    choice["message"] = {"role": "assistant", "content": choice["message"]["content"]}
    if reasoning:
        choice["message"]["reasoning_content"] = "Thinking about " + rid[:8]
    return {
        "id": _uuid(rid),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage,
        "system_fingerprint": "fp_xai_emulator",
    }
