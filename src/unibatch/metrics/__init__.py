"""Prometheus metrics: what each process counts (`counters`) and fleet-wide aggregates
read from the store at scrape time (`collector`)."""

from __future__ import annotations

from unibatch.metrics.collector import StoreCollector, render
from unibatch.metrics.counters import (
    INGESTED_ROWS,
    LEASE_TAKEOVERS,
    PROVIDER_CALLS,
    PROVIDER_SECONDS,
    REALTIME_SENDS,
)

__all__ = [
    "INGESTED_ROWS",
    "LEASE_TAKEOVERS",
    "PROVIDER_CALLS",
    "PROVIDER_SECONDS",
    "REALTIME_SENDS",
    "StoreCollector",
    "render",
]
