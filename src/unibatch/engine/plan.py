"""Planning: group requests into provider jobs that fit each provider's limits.

One job per (provider, model, endpoint); a group that would pass the provider's request
or byte limit is split into further jobs. Only the open job per group is kept in
memory, so planning a million requests costs a handful of dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unibatch.engine.ids import new_id
from unibatch.errors import LimitError
from unibatch.providers.spec import BatchLimits, ProviderSpec
from unibatch.providers.translate import EMBEDDINGS

_UNLIMITED = BatchLimits(max_requests=2**62, max_bytes=2**62)
# The mode of a job whose requests the result cache answered (`unibatch.engine.cache`).
CACHE = "cache"


@dataclass(slots=True)
class PlannedJob:
    id: str
    provider: str
    model: str
    endpoint: str
    mode: str = "batch"
    request_count: int = 0
    byte_count: int = 0
    input_count: int = 0
    input_tokens: int = 0


@dataclass(slots=True)
class Planner:
    batch_id: str
    created_at: float
    jobs: list[PlannedJob] = field(default_factory=list)
    # Providers whose jobs run through the real-time runner although they have a Batch
    # API (`UNIBATCH_REALTIME_PROVIDERS`); a provider without one always does.
    realtime: frozenset[str] = frozenset()
    # The enqueued-token limit in force for (provider, model), None: none
    # (`unibatch.engine.queue.token_limits`). A job holds at most `token_share` of it.
    token_limit: Callable[[ProviderSpec, str], int | None] = lambda spec, model: None
    token_share: float = 0.5
    # Every job runs in real time (follow-up jobs of a batch past its deadline's switch).
    everything_realtime: bool = False
    _open: dict[tuple[str, str, str], PlannedJob] = field(default_factory=dict)
    _budgets: dict[tuple[str, str], int | None] = field(default_factory=dict)
    _cached: dict[tuple[str, str, str, str], PlannedJob] = field(default_factory=dict)

    def assign(
        self,
        provider: ProviderSpec,
        model: str,
        endpoint: str,
        size: int,
        path: str | None = None,
        line: int | None = None,
        inputs: int = 1,
        tokens: int = 0,
    ) -> str:
        """The id of the job this request goes to. `path` and `line` name the request in
        the error for one no job can take; `inputs` counts the embedding inputs of an
        embeddings request, which some providers limit per batch; `tokens` its estimated
        input tokens, which a provider's queue limits."""
        # Real-time jobs may be of any size (they are sent a request at a time).
        limits = provider.batch_limits or _UNLIMITED
        realtime = (
            self.everything_realtime
            or provider.batch_limits is None
            or provider.name in self.realtime
        )
        if realtime:
            limits = _UNLIMITED
        budget = None if realtime else self._budget(provider, model, tokens, path, line)
        if size > limits.max_bytes:
            raise LimitError(
                f"request is {size} bytes, more than {provider.name}'s "
                f"{limits.max_bytes} byte limit for a whole batch file; shorten it",
                path=path,
                line=line,
            )
        max_inputs = limits.max_embedding_inputs if endpoint == EMBEDDINGS else None
        if max_inputs is not None and inputs > max_inputs:
            raise LimitError(
                f"request has {inputs} inputs, more than the {max_inputs} "
                f"{provider.name} embeds in one batch; split it",
                path=path,
                line=line,
            )
        key = (provider.name, model, endpoint)
        job = self._open.get(key)
        if (
            job is None
            or job.request_count + 1 > limits.max_requests
            or job.byte_count + size > limits.max_bytes
            or (max_inputs is not None and job.input_count + inputs > max_inputs)
            or (budget is not None and job.input_tokens + tokens > budget)
        ):
            mode = "realtime" if realtime else "batch"
            job = PlannedJob(new_id("ubj"), provider.name, model, endpoint, mode)
            self._open[key] = job
            self.jobs.append(job)
        job.request_count += 1
        job.byte_count += size
        job.input_count += inputs
        job.input_tokens += tokens
        return job.id

    def assign_cached(self, provider: str, model: str, endpoint: str) -> str:
        """The id of the job that holds the requests of this group answered from the result
        cache: a job that sends nothing, done from the start (`CACHE` mode). Its results
        are written with its requests, so no limit applies to it."""
        key = (provider, model, endpoint, CACHE)
        job = self._cached.get(key)
        if job is None:
            job = self._cached[key] = PlannedJob(new_id("ubj"), provider, model, endpoint, CACHE)
            self.jobs.append(job)
        job.request_count += 1
        return job.id

    def check_minimums(self, minimum: Callable[[str], int]) -> None:
        """Refuse a batch job smaller than its provider takes (`minimum(provider)`), before
        anything is stored or sent: a provider refuses such a job only once it is created."""
        for job in self.jobs:
            least = minimum(job.provider) if job.mode == "batch" else 1
            if job.request_count < least:
                raise LimitError(
                    f"{job.provider}/{job.model} gets {job.request_count} requests, fewer than "
                    f"the {least} {job.provider} takes in one batch job; send at least {least} "
                    "requests for this model, or lower the provider's minimum if your quota "
                    "allows (see the README's section on the provider)"
                )

    def counts_tokens(self, provider: ProviderSpec, model: str) -> bool:
        """Whether an enqueued-token limit is in force for `model`: its requests are then
        worth counting exactly where unibatch can (`unibatch.engine.queue_tokens`)."""
        return self._budget_of(provider, model) is not None

    def _budget_of(self, provider: ProviderSpec, model: str) -> int | None:
        key = (provider.name, model)
        if key not in self._budgets:
            limit = self.token_limit(provider, model)
            budget = None if limit is None else max(1, int(limit * self.token_share))
            self._budgets[key] = budget
        return self._budgets[key]

    def _budget(
        self, provider: ProviderSpec, model: str, tokens: int, path: str | None, line: int | None
    ) -> int | None:
        """The most tokens a job of `model` may hold; a request over the whole limit is
        refused, as the provider would refuse every batch holding it."""
        budget = self._budget_of(provider, model)
        if budget is not None and tokens > budget / self.token_share:
            raise LimitError(
                f"request has about {tokens:,} input tokens, more than {provider.name}'s "
                f"limit of {int(budget / self.token_share):,} enqueued tokens for {model}; "
                "shorten it, or raise the limit (UNIBATCH_QUEUE_LIMITS)",
                path=path,
                line=line,
            )
        return budget

    def rows(self) -> list[dict[str, Any]]:
        return [self._row(job) for job in self.jobs if job.request_count]

    def _row(self, job: PlannedJob) -> dict[str, Any]:
        row = {
            "id": job.id,
            "batch_id": self.batch_id,
            "provider": job.provider,
            "model": job.model,
            "endpoint": job.endpoint,
            "mode": job.mode,
            "phase": "pending",
            "status": "pending",
            "request_count": job.request_count,
            "byte_count": job.byte_count,
            "input_tokens": job.input_tokens,
            "errors": [],
            "next_run_at": self.created_at,
            "finished_at": None,
        }
        if job.mode == CACHE:
            row.update(phase="done", status="completed", next_run_at=None)
            row["finished_at"] = self.created_at
        return row
