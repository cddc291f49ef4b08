"""What this process counts as it works: provider calls, lease takeovers, result rows
ingested, real-time sends. Registered once, in prometheus_client's default registry,
so a gateway and its in-process worker share them.

Each process counts its own; Prometheus sums the processes (`sum by (...)`).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PROVIDER_CALLS = Counter(
    "unibatch_provider_requests",
    "HTTP requests sent to provider APIs, by provider and answer (status code, or "
    "'error' when no answer came: timeout, reset, refused).",
    ["provider", "code"],
)
PROVIDER_SECONDS = Histogram(
    "unibatch_provider_request_seconds",
    "Seconds from sending a request to a provider to its answer's headers.",
    ["provider"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
LEASE_TAKEOVERS = Counter(
    "unibatch_lease_takeovers",
    "Steps this process claimed whose lease another worker held and let run out (a "
    "crashed or stalled worker), by step kind (job, batch).",
    ["step"],
)
INGESTED_ROWS = Counter(
    "unibatch_ingested_rows",
    "Request results written to the store (batch result files and real-time answers); "
    "rate() gives rows per second.",
)
REALTIME_SENDS = Counter(
    "unibatch_realtime_sends",
    "Requests sent to a provider's real-time endpoint, by provider (a resend after a "
    "crash counts again).",
    ["provider"],
)
