"""Manual retry: send the failed or unfinished requests of an ended batch again, into the
same batch, optionally on another model.

The requests are read and (for another model) checked against that model's rules first,
with nothing written; then one transaction reopens the batch and moves them to follow-up
jobs (`unibatch.store.retries`), which workers send as any other job. A request the new
model's rules refuse stays as it was, and the caller is told why.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from unibatch import codec
from unibatch.engine import limits
from unibatch.engine.context import Context
from unibatch.engine.inputs import embedding_inputs
from unibatch.engine.plan import Planner
from unibatch.engine.queue_tokens import input_tokens
from unibatch.errors import InputError, NotEndedError, NotFoundError
from unibatch.providers.base import RequestLine
from unibatch.providers.registry import split_model
from unibatch.providers.translate import EMBEDDINGS
from unibatch.store.retries import FollowUp
from unibatch.types import RequestStatus

# What a manual retry may re-run: every outcome but success.
RETRIABLE = (RequestStatus.ERRORED, RequestStatus.EXPIRED, RequestStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Refused:
    """A request left as it was: the new model's rules do not take it."""

    custom_id: str
    message: str


@dataclass(slots=True)
class RetryOutcome:
    """What a manual retry did: how many requests went out again, and which stayed."""

    batch_id: str
    retried: int = 0
    refused: list[Refused] = field(default_factory=list)


def parse_statuses(statuses: Collection[str] | None) -> tuple[str, ...]:
    """The request statuses to re-run (default: every one but `succeeded`)."""
    if not statuses:
        return tuple(s.value for s in RETRIABLE)
    allowed = {s.value for s in RETRIABLE}
    for status in statuses:
        if status not in allowed:
            raise InputError(
                f"status {status!r} cannot be retried; choose from {', '.join(sorted(allowed))}",
                field="status",
            )
    return tuple(dict.fromkeys(statuses))


async def retry_batch(
    ctx: Context,
    batch_id: str,
    *,
    statuses: Collection[str] | None = None,
    model: str | None = None,
    max_attempts: int | None = None,
) -> RetryOutcome:
    """Re-run the requests of an ended batch whose result has one of `statuses`, on
    `model` if given (else the model each ran on). Each gets `max_attempts` more attempts
    (default: the setting); raises `InputError` if the batch has not ended."""
    wanted = parse_statuses(statuses)
    batch = await ctx.store.get_batch(batch_id)
    if batch is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    if not batch.status.terminal:
        raise NotEndedError(
            f"batch {batch_id} is {batch.status.value}: only an ended batch can be retried "
            f"(wait for it, or cancel it first)"
        )
    extra = max_attempts if max_attempts is not None else ctx.settings.max_attempts
    if extra < 1:
        raise InputError("max_attempts must be at least 1", field="max_attempts")
    target = target_model(ctx, model) if model else None
    moves = Moves(ctx, batch_id)
    outcome = RetryOutcome(batch_id)
    async for rows in ctx.store.retry_candidates(batch_id, wanted):
        for row in rows:
            refusal = moves.place(row, target)
            if refusal is not None:
                outcome.refused.append(Refused(row["custom_id"], refusal))
    follow_ups = moves.follow_ups(extra)
    if not follow_ups:
        return outcome
    outcome.retried = await ctx.store.reopen(batch_id, follow_ups, now=ctx.clock())
    return outcome


class Moves:
    """Requests placed in follow-up jobs on their own model or a `target` one, each checked
    against the rules of the provider it goes to; nothing is written here."""

    def __init__(self, ctx: Context, batch_id: str, *, realtime: bool = False) -> None:
        self._ctx = ctx
        # `realtime`: every follow-up job runs in real time (a batch past its deadline's
        # switch-over, where a Batch API job would end too late).
        self._realtime = realtime
        self._planner = Planner(
            batch_id,
            ctx.clock(),
            realtime=frozenset(ctx.settings.realtime_providers),
            everything_realtime=realtime,
        )
        self._members: dict[str, list[tuple[str, bytes | None]]] = {}
        self._replaced = False

    def place(self, row: Mapping[str, Any], target: tuple[str, str] | None) -> str | None:
        """Put one request (a row with seq, custom_id, body, provider, model and endpoint)
        in a follow-up job; None, or why the target's rules refuse it."""
        ctx = self._ctx
        body = orjson.loads(codec.json_bytes(row["body"]) or b"{}")
        provider, bare = target or (row["provider"], row["model"])
        new_body: bytes | None = None
        try:
            if target is not None:
                body = {**body, "model": bare}
                new_body = limits.encode_body(body)
            size, inputs = _checked(ctx, provider, row["endpoint"], row, body)
            spec = ctx.providers.spec(provider)
            if self._realtime and not spec.has_realtime:
                raise InputError(f"{provider} has no real-time endpoint in unibatch")
            exact = self._planner.counts_tokens(spec, bare)
            tokens = input_tokens(provider, bare, row["endpoint"], body, exact=exact)
            job_id = self._planner.assign(
                spec, bare, row["endpoint"], size, inputs=inputs, tokens=tokens
            )
        except (InputError, limits.ValueRefused) as exc:
            return exc.detail if isinstance(exc, InputError) else f"body {exc}"
        packed = None if new_body is None else codec.pack_bytes(new_body)
        self._replaced = self._replaced or target is not None
        self._members.setdefault(job_id, []).append((row["custom_id"], packed))
        return None

    def follow_ups(self, more_attempts: int) -> list[FollowUp]:
        """The follow-up jobs of the requests placed; each request gets `more_attempts`
        attempts from there, retries included."""
        now = self._ctx.clock()
        made = []
        for job in self._planner.jobs:
            placed = self._members.get(job.id, [])
            if not placed:
                continue
            made.append(
                FollowUp(
                    job_id=job.id,
                    provider=job.provider,
                    model=job.model,
                    endpoint=job.endpoint,
                    # A model without a Batch API (`local/...`) is answered in real time.
                    mode=job.mode,
                    next_run_at=now,
                    custom_ids=[cid for cid, _ in placed],
                    # Bodies change only where the model did (a request keeps its own
                    # body when it stays on its model).
                    bodies=[b or b"" for _, b in placed] if self._replaced else None,
                    byte_count=job.byte_count,
                    input_tokens=job.input_tokens,
                    more_attempts=more_attempts,
                )
            )
        return made


def target_model(ctx: Context, model: str) -> tuple[str, str]:
    """The provider and bare model name of `--model`, checked once (known, has a key)."""
    provider, bare = split_model(model)
    try:
        limits.check_text(bare, limits.MAX_MODEL)
    except limits.ValueRefused as exc:
        raise InputError(f"model {exc}", field="model") from None
    ctx.providers.check(provider)
    return provider, bare


def _checked(
    ctx: Context, provider: str, endpoint: str, row: Mapping[str, Any], body: dict[str, object]
) -> tuple[int, int]:
    """The size the request adds to a provider batch and its embedding inputs, once the
    provider takes its endpoint and its rules take the body; else `InputError`."""
    spec = ctx.providers.spec(provider)
    if endpoint not in spec.endpoints:
        raise InputError(f"{spec.name} does not serve {endpoint}", field="url")
    adapter = spec.adapter_class()
    adapter.translator.validate(endpoint, body)
    line = RequestLine(str(row["custom_id"]), body, int(str(row["seq"])))
    inputs = embedding_inputs(body) if endpoint == EMBEDDINGS else 1
    return adapter.line_bytes(line), inputs
