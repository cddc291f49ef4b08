"""Planning: group requests into provider jobs that fit each provider's limits.

One job per (provider, model, endpoint); a group that would pass the provider's request
or byte limit is split into further jobs. Only the open job per group is kept in
memory, so planning a million requests costs a handful of dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unibatch.engine.ids import new_id
from unibatch.errors import LimitError
from unibatch.providers.spec import BatchLimits, ProviderSpec
from unibatch.providers.translate import EMBEDDINGS

_UNLIMITED = BatchLimits(max_requests=2**62, max_bytes=2**62)


@dataclass(slots=True)
class PlannedJob:
    id: str
    provider: str
    model: str
    endpoint: str
    request_count: int = 0
    byte_count: int = 0
    input_count: int = 0


@dataclass(slots=True)
class Planner:
    batch_id: str
    created_at: float
    jobs: list[PlannedJob] = field(default_factory=list)
    _open: dict[tuple[str, str, str], PlannedJob] = field(default_factory=dict)

    def assign(
        self,
        provider: ProviderSpec,
        model: str,
        endpoint: str,
        size: int,
        path: str | None = None,
        line: int | None = None,
        inputs: int = 1,
    ) -> str:
        """The id of the job this request goes to. `path` and `line` name the request in
        the error for one no job can take; `inputs` counts the embedding inputs of an
        embeddings request, which some providers limit per batch."""
        # A provider without a Batch API takes jobs of any size (they run in real time).
        limits = provider.batch_limits or _UNLIMITED
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
        ):
            job = PlannedJob(new_id("ubj"), provider.name, model, endpoint)
            self._open[key] = job
            self.jobs.append(job)
        job.request_count += 1
        job.byte_count += size
        job.input_count += inputs
        return job.id

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": job.id,
                "batch_id": self.batch_id,
                "provider": job.provider,
                "model": job.model,
                "endpoint": job.endpoint,
                "phase": "pending",
                "status": "pending",
                "request_count": job.request_count,
                "byte_count": job.byte_count,
                "errors": [],
                "next_run_at": self.created_at,
            }
            for job in self.jobs
        ]
