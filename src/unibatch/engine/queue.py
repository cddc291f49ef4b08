"""The queue-aware scheduler: jobs are sent as the provider's queue has room for them.

Above a few hundred thousand requests the Batch APIs' queue limits decide what happens:
OpenAI caps the input tokens enqueued per model (a batch over it fails validation with
`token_limit_exceeded`), Anthropic the requests waiting in its processing queue, Gemini
the batch jobs running at once. Each provider's spec carries the figures of its lowest
published tier (`ProviderSpec.queue_limits`); a deployment sets its own in
`UNIBATCH_QUEUE_LIMITS`. A pending job is sent only when it fits next to the jobs every
worker has in flight (`Store.claim_capacity`); a refusal for a queue limit sends it back
to wait and lowers the limit in force (`Store.queue_refused`).

What a limit counts: `enqueued_tokens` per model (OpenAI and Gemini count them per
model); `queued_requests` and `concurrent_batches` over every model of the provider
(Anthropic's queue and Gemini's concurrent jobs are per account), unless the limit is
set for one model (`openai/gpt-4o-mini.queued_requests=...`), which counts that model's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from unibatch import codec
from unibatch.config import Settings
from unibatch.engine.context import Context
from unibatch.engine.ids import new_id
from unibatch.engine.queue_tokens import input_tokens
from unibatch.providers.spec import ProviderSpec
from unibatch.store.queue import ENQUEUED_TOKENS, KINDS, Limit, Need, apply_learned
from unibatch.store.records import JobRecord

log = logging.getLogger("unibatch.engine")
# A planned job takes at most this share of an enqueued-token limit, so that the next
# job can be in flight while one finishes instead of the queue running one job at a time.
JOB_SHARE = 0.5
# Requests read from the store at a time while a job too big for its limit is split.
_SPLIT_CHUNK = 2000


def _scope(kind: str, model: str, per_model: bool) -> str:
    return model if per_model or kind == ENQUEUED_TOKENS else ""


def configured_limits(settings: Settings, spec: ProviderSpec, model: str) -> list[Limit]:
    """The queue limits configured for `model` of the provider: the deployment's entry for
    the model, else for the provider, else the spec's for the model, else for the
    provider. A 0 removes the limit."""
    found: list[Limit] = []
    for kind in KINDS:
        candidates: list[tuple[Any, bool]] = [
            (settings.queue_limits.get(f"{spec.name}/{model}.{kind}"), True),
            (settings.queue_limits.get(f"{spec.name}.{kind}"), False),
            (spec.queue_limits.get(f"{model}.{kind}"), True),
            (spec.queue_limits.get(kind), False),
        ]
        for value, per_model in candidates:
            if value is not None:
                if value > 0:
                    found.append(Limit(spec.name, _scope(kind, model, per_model), kind, value))
                break
    return found


def scopes(settings: Settings, spec: ProviderSpec, model: str) -> list[Limit]:
    """Every limit that could apply to `model` (value 0 where none is configured): where a
    limit learned from a refusal is looked up even if nobody configured one."""
    configured = {lim.kind: lim for lim in configured_limits(settings, spec, model)}
    return [
        configured.get(kind) or Limit(spec.name, _scope(kind, model, False), kind, 0)
        for kind in KINDS
    ]


def need_of(job: JobRecord) -> Need:
    return Need(job.model, job.input_tokens, job.request_count)


async def token_limits(ctx: Context) -> Callable[[ProviderSpec, str], int | None]:
    """The enqueued-token limit in force per (provider, model), for a planner: configured,
    lowered by what refusals taught (read once, when planning starts)."""
    learned = await ctx.store.learned_limits()
    settings = ctx.settings

    def limit(spec: ProviderSpec, model: str) -> int | None:
        slots = scopes(settings, spec, model)
        configured = configured_limits(settings, spec, model)
        in_force = apply_learned(configured, learned.get(spec.name, {}), slots)
        values = [lim.value for lim in in_force if lim.kind == ENQUEUED_TOKENS]
        return min(values) if values else None

    return limit


async def claim_or_wait(ctx: Context, job: JobRecord) -> bool:
    """Whether the job may be sent now (it is then `submitting` and holds its share of the
    queue); otherwise it waits, saying why. A job too big for a limit on its own (the
    limit was lowered after it was planned) is split first."""
    spec = ctx.providers.spec(job.provider)
    settings = ctx.settings
    verdict = await ctx.store.claim_capacity(
        job.id,
        ctx.owner,
        need_of(job),
        configured_limits(settings, spec, job.model),
        scopes(settings, spec, job.model),
        attempts=job.submit_attempts + 1,
        retry_at=ctx.clock() + settings.queue_recheck,
    )
    if verdict.ok:
        return True
    if verdict.too_big is not None:
        await _split(ctx, job, verdict.too_big)
    else:
        log.info("job %s: %s", job.id, verdict.reason)
    return False


async def _split(ctx: Context, job: JobRecord, limit: Limit) -> None:
    """Split a job that passes `limit` on its own into jobs that each take at most its
    share (`JOB_SHARE`), in input order; the parts wait for capacity like any job. A
    single request over an enqueued-token limit cannot be split: the job fails, saying so."""
    cap = max(1, int(limit.value * JOB_SHARE))
    by_tokens = limit.kind == ENQUEUED_TOKENS
    # [first seq, requests, tokens] per group; the first group stays in the job.
    groups: list[list[int]] = []
    async for chunk in ctx.store.job_requests(job.id, _SPLIT_CHUNK):
        for seq, custom_id, body in chunk:
            data = orjson.loads(codec.json_bytes(body) or b"{}")
            tokens = input_tokens(job.provider, job.model, job.endpoint, data, exact=by_tokens)
            if by_tokens and tokens > limit.value:
                error = (
                    f"request {custom_id!r} has about {tokens:,} input tokens, more than "
                    f"the {limit.value:,} limit of {limit.label()}"
                )
                if tokens <= _configured_value(ctx, job, limit):
                    # Over a limit learned from a refusal only: the provider's queue may
                    # have been full of other work then. Wait; the configuration decides.
                    await ctx.store.retry_job_later(
                        job.id, ctx.owner, error, at=ctx.clock() + ctx.settings.queue_recheck
                    )
                    return
                await ctx.store.fail_job(job.id, ctx.owner, error, now=ctx.clock())
                return
            weight = tokens if by_tokens else 1
            used = groups[-1][2] if by_tokens and groups else groups[-1][1] if groups else 0
            if not groups or (groups[-1][1] and used + weight > cap):
                groups.append([seq, 0, 0])
            groups[-1][1] += 1
            groups[-1][2] += tokens
    parts = [(new_id("ubj"), first, count, tokens) for first, count, tokens in groups[1:]]
    if await ctx.store.split_job(job.id, ctx.owner, parts, now=ctx.clock()):
        log.warning(
            "job %s: over the %s limit (%s) on its own; split into %d jobs",
            job.id,
            limit.label(),
            f"{limit.value:,}",
            len(groups),
        )


def _configured_value(ctx: Context, job: JobRecord, limit: Limit) -> float:
    """The configured figure of `limit`'s kind for the job's model (inf: none)."""
    spec = ctx.providers.spec(job.provider)
    for lim in configured_limits(ctx.settings, spec, job.model):
        if lim.kind == limit.kind:
            return lim.value
    return float("inf")


async def requeue_refused(ctx: Context, job: JobRecord, kind: str, error: str) -> None:
    """The provider refused the job's batch for its `kind` queue limit: learn a lower
    limit, and put the job back to wait (split, if it no longer fits on its own)."""
    spec = ctx.providers.spec(job.provider)
    settings = ctx.settings
    configured = {lim.kind: lim for lim in configured_limits(settings, spec, job.model)}
    slot = next(lim for lim in scopes(settings, spec, job.model) if lim.kind == kind)
    in_force = await ctx.store.limits_in_force(list(configured.values()), [slot])
    current = next((lim for lim in in_force if lim.kind == kind), None)
    # With no limit in force, the job and everything in flight beside it were too much.
    ceiling = current.value if current is not None else 2**62
    learned = await ctx.store.queue_refused(
        job.id,
        ctx.owner,
        Limit(slot.provider, slot.scope, kind, ceiling),
        need_of(job),
        configured[kind].value if kind in configured else None,
        error,
        now=ctx.clock(),
    )
    log.warning(
        "job %s: refused by %s for its queue limit (%s); %s limit now %s; waiting",
        job.id,
        job.provider,
        error,
        slot.label(),
        f"{learned:,}",
    )
