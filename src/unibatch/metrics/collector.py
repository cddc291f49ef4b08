"""The `/metrics` page: this process's counters and the store's aggregates.

The aggregates are read when Prometheus scrapes, in one transaction of four statements
over the small tables (`unibatch.store.stats`), so every process serving `/metrics`
shows the same fleet-wide figures: query them with `max by (...)`, not `sum`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from unibatch.store.stats import Stats, read_stats

if TYPE_CHECKING:
    from unibatch.store import Store

__all__ = ["CONTENT_TYPE_LATEST", "StoreCollector", "render"]


class StoreCollector:
    """The metric families of one `Stats` read (a collector for one scrape)."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def describe(self) -> list[Metric]:
        # Nothing up front: the registry must not call `collect` on registration.
        return []

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        yield _gauge(
            "unibatch_batches",
            "Batches by status and provider (a batch split over providers counts under "
            "each; 'none': no provider job yet).",
            ["status", "provider"],
            sorted(s.batches.items()),
        )
        yield _gauge(
            "unibatch_requests",
            "Requests by outcome, counted when their batch finishes; requests of "
            "unfinished batches are 'pending'.",
            ["status"],
            [((status,), n) for status, n in s.requests.items()],
        )
        jobs = sorted(s.jobs.items())
        yield _gauge(
            "unibatch_jobs",
            "Provider jobs by provider and status.",
            ["provider", "status"],
            [(key, n) for key, (n, _) in jobs],
        )
        yield _gauge(
            "unibatch_job_requests",
            "Requests in provider jobs, by provider and the job's status (a retried "
            "request counts in each job that carried it).",
            ["provider", "status"],
            [(key, n) for key, (_, n) in jobs],
        )
        yield _gauge(
            "unibatch_tokens",
            "Tokens billed by finished batches, by kind.",
            ["kind"],
            [((kind,), n) for kind, n in s.tokens.items()],
        )
        yield _gauge(
            "unibatch_cost_usd",
            "Cost of finished batches at batch prices, in US dollars, by part.",
            ["part"],
            [((part,), usd) for part, usd in s.cost.items()],
        )
        yield _gauge(
            "unibatch_due_steps",
            "Steps due now that no worker holds, by kind (job: submit, poll, ingest; "
            "batch: completion handlers; webhook: deliveries). Growing: add workers.",
            ["step"],
            [((step,), n) for step, n in s.due.items()],
        )
        hooks = sorted(s.webhooks.items())
        yield _gauge(
            "unibatch_webhook_deliveries",
            "Webhook deliveries (one per event and endpoint) by event type and state "
            "(pending, delivered, failed: given up after the retry window).",
            ["type", "state"],
            [(key, n) for key, (n, _) in hooks],
        )
        yield _gauge(
            "unibatch_webhook_attempts",
            "Attempts made to deliver webhooks, by event type and delivery state.",
            ["type", "state"],
            [(key, n) for key, (_, n) in hooks],
        )


def _gauge(
    name: str, doc: str, labels: list[str], values: Iterable[tuple[Sequence[str], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for key, value in values:
        family.add_metric(list(key), value)
    return family


class _Process:
    """prometheus_client's default registry (this process's counters, its CPU and
    memory) as one collector of a scrape's registry."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


async def render(store: Store) -> bytes:
    """The text exposition of every metric, the store's read now."""
    stats = await store.read(lambda conn: read_stats(conn, time.time()))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Process())
    registry.register(StoreCollector(stats))
    return generate_latest(registry)
