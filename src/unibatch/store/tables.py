"""The engine's schema, as SQLAlchemy Core tables. The gateway adds its own tables to the
same `metadata` (`unibatch.gateway.tables`); Alembic migrations must produce exactly both.

Timestamps are Unix seconds (floats): portable across SQLite and PostgreSQL and cheap to
compare in lease and schedule queries.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# A logical batch: what one submit call accepted.
batches = sa.Table(
    "batches",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    # `validating` while its requests are being imported (`unibatch.store.imports`): no
    # one but its importer sees or runs it; then `pending`, and a terminal status at the end.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("submitted_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("metadata", sa.JSON, nullable=False),
    # Why the batch failed before anything was sent: [{code, message, line, param}].
    sa.Column("errors", sa.JSON, nullable=False),
    sa.Column("cancel_requested", sa.Boolean, nullable=False, default=False),
    # When the cancel was first asked for (OpenAI's `cancelling_at`).
    sa.Column("cancel_requested_at", sa.Float),
    # Seconds after submit before a job is cancelled; NULL: the provider's own window.
    sa.Column("max_age", sa.Float, nullable=True),
    # How many times a request that fails in a retryable way is sent, in all (1: never
    # again); follow-up jobs of the batch carry the retries.
    sa.Column("max_attempts", sa.Integer, nullable=False, server_default="1"),
    # Models ("provider/model") a provider job's unfinished requests move to, in order,
    # when it fails or is stuck past `stuck_after` seconds (then it is cancelled).
    sa.Column("fallback_models", sa.JSON, nullable=False, server_default="[]"),
    sa.Column("stuck_after", sa.Float, nullable=True),
    # When the batch must have ended (epoch seconds; NULL: no deadline), and when it stopped
    # waiting for the Batch API to meet it (`unibatch.engine.deadline`): from then on its
    # unfinished requests run in real time.
    sa.Column("deadline", sa.Float, nullable=True),
    sa.Column("deadline_switched_at", sa.Float, nullable=True),
    # Webhook endpoints (`webhook_endpoints` ids) told when the batch ends or is retried.
    sa.Column("webhooks", sa.JSON, nullable=False, server_default="[]"),
    # Spend cap in USD (`--max-cost`) and the batch's estimated cost at batch prices, made
    # while it was read; NULL: no cap.
    sa.Column("max_cost", sa.Float, nullable=True),
    sa.Column("estimated_cost", sa.Float, nullable=True),
    # Completion handler ("module:function") and its delivery state: none|pending|done.
    sa.Column("on_complete", sa.String(255)),
    sa.Column("handler_state", sa.String(8), nullable=False, default="none"),
    sa.Column("handler_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("handler_error", sa.Text),
    # Batch-level steps (finalize, notify) are scheduled and leased like jobs; an import
    # leases its batch too (the lease is its heartbeat).
    sa.Column("next_run_at", sa.Float),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    # Totals, written once at finalize (live progress is aggregated from `results`).
    sa.Column("request_total", sa.Integer, nullable=False, default=0),
    sa.Column("succeeded", sa.Integer, nullable=False, default=0),
    sa.Column("errored", sa.Integer, nullable=False, default=0),
    sa.Column("expired", sa.Integer, nullable=False, default=0),
    sa.Column("cancelled", sa.Integer, nullable=False, default=0),
    sa.Column("input_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cached_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_input", sa.Float, nullable=False, default=0.0),
    sa.Column("cost_output", sa.Float, nullable=False, default=0.0),
    sa.Index("ix_batches_status", "status"),
    sa.Index("ix_batches_next_run_at", "next_run_at"),
)

# One provider batch. A logical batch becomes one job per (provider, model, endpoint),
# more when a group exceeds the provider's request or byte limit.
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("endpoint", sa.String(64), nullable=False),
    # How the requests reach the provider; picks the runner (`unibatch.engine.runners`).
    sa.Column("mode", sa.String(16), nullable=False, server_default="batch"),
    # The price its results were costed at, as JSON text (`Pricer.price_used`), shown
    # with each result; NULL before its results were costed.
    sa.Column("price", sa.Text, nullable=True),
    # Engine phase: pending -> submitting -> running -> ingesting -> done.
    sa.Column("phase", sa.String(12), nullable=False),
    # The provider's status mapped to ours, and the native one for display.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("native_status", sa.String(64)),
    sa.Column("provider_batch_id", sa.String(255)),
    sa.Column("input_file_id", sa.String(255)),
    sa.Column("output_file_id", sa.String(255)),
    sa.Column("error_file_id", sa.String(255)),
    sa.Column("request_count", sa.Integer, nullable=False),
    sa.Column("byte_count", sa.BigInteger, nullable=False),
    # Estimated input tokens of its requests: what it holds of a provider's enqueued-token
    # limit while it is in flight (`unibatch.engine.queue`).
    sa.Column("input_tokens", sa.BigInteger, nullable=False, server_default="0"),
    # Why a pending job is not sent yet (the provider's queue is full); NULL otherwise.
    sa.Column("queue_wait", sa.Text),
    # The provider's own progress counters, as last polled (shown while the job runs).
    sa.Column("provider_completed", sa.Integer, nullable=False, default=0),
    sa.Column("provider_failed", sa.Integer, nullable=False, default=0),
    sa.Column("provider_cancelled", sa.Integer, nullable=False, server_default="0"),
    sa.Column("errors", sa.JSON, nullable=False),
    sa.Column("submitted_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("cancel_sent", sa.Boolean, nullable=False, default=False),
    sa.Column("submit_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("poll_count", sa.Integer, nullable=False, default=0),
    sa.Column("transient_errors", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("next_run_at", sa.Float),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.Index("ix_jobs_batch_id", "batch_id"),
    sa.Index("ix_jobs_phase_next_run_at", "phase", "next_run_at"),
    # The claim's order: unfinished jobs, earliest due first, read from the front of the
    # index and no further than the claim needs.
    sa.Index(
        "ix_jobs_due",
        "next_run_at",
        postgresql_where=sa.text("phase <> 'done'"),
        sqlite_where=sa.text("phase <> 'done'"),
    ),
    # A deadline's estimate reads the latest real-time jobs of one model (in any batch).
    sa.Index(
        "ix_jobs_realtime_finished",
        "provider",
        "model",
        "finished_at",
        postgresql_where=sa.text("mode = 'realtime'"),
        sqlite_where=sa.text("mode = 'realtime'"),
    ),
)

# One row per submitted request; the body is stored packed (`unibatch.codec`).
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("custom_id", sa.String(512), nullable=False),
    # The job that sends the request now: a follow-up job once it is retried.
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # Times the request has been handed to a job (1 + its retries so far).
    sa.Column("attempts", sa.Integer, nullable=False, server_default="1"),
    # Its own attempt limit once a manual retry gave it more attempts; NULL: the batch's.
    sa.Column("max_attempts", sa.Integer, nullable=True),
    # SHA-256 of what decides the answer (`unibatch.engine.cache`): provider, model,
    # endpoint and canonical body. NULL unless the batch was submitted with the cache.
    sa.Column("cache_key", sa.LargeBinary(32), nullable=True),
    # Its first 8 bytes as a signed integer: what the index holds (`cache_key` tells
    # the rare requests that share it apart).
    sa.Column("cache_hash", sa.BigInteger, nullable=True),
    sa.UniqueConstraint("batch_id", "custom_id", name="uq_requests_batch_custom_id"),
    sa.Index("ix_requests_job_id", "job_id", "seq"),
    # The cache's lookup: a chunk of keys at a time (`Store.cached_answers`). Hashes are
    # random, so each insert into their index dirties a page of its own, which SQLite
    # writes to its WAL at every commit: an 8-byte integer keeps the index a third the
    # size of the 32-byte keys; partial, so batches without the cache add nothing to it.
    sa.Index(
        "ix_requests_cache_hash",
        "cache_hash",
        postgresql_where=sa.text("cache_hash IS NOT NULL"),
        sqlite_where=sa.text("cache_hash IS NOT NULL"),
    ),
)


def _billed() -> list[sa.Column[Any]]:
    """What the provider billed for one attempt of a request: tokens and cost."""
    tokens = ("input", "output", "cached", "reasoning", "cache_write")
    return [
        *(sa.Column(f"{kind}_tokens", sa.Integer, nullable=False, default=0) for kind in tokens),
        # NULL when the model has no known price (a local server's): unknown, not free.
        sa.Column("cost_input", sa.Float, nullable=True, default=0.0),
        sa.Column("cost_output", sa.Float, nullable=True, default=0.0),
    ]


# One row per request outcome. Insert-only with "on conflict do nothing", so applying a
# result file twice changes nothing.
results = sa.Table(
    "results",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("custom_id", sa.String(512), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("row_id", sa.String(255)),
    sa.Column("request_id", sa.String(255)),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("retryable", sa.Boolean, nullable=False, default=False),
    *_billed(),
    # Response body in the lingua franca (a ChatCompletion, ...), packed.
    sa.Column("body", sa.LargeBinary),
    # The provider's native row, packed; null when `body` and the columns rebuild it.
    sa.Column("raw", sa.LargeBinary),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Requests of real-time jobs that may have reached the provider: written before a request
# is sent, so that after a crash a request with a marker but no result is known to have
# been (possibly) sent once already (`unibatch.engine.runners.realtime`).
realtime_sends = sa.Table(
    "realtime_sends",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("custom_id", sa.String(512), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=False),
    # How many times a worker started sending it (a resend after a crash adds one).
    sa.Column("sends", sa.Integer, nullable=False, default=1),
    sa.Column("first_sent_at", sa.Float, nullable=False),
    sa.Column("last_sent_at", sa.Float, nullable=False),
    sa.Index("ix_realtime_sends_job_id", "job_id"),
)

# The earlier outcomes of requests that were sent again (automatic or manual retries): one
# row per attempt that did not stand, moved out of `results` in the transaction that
# plans the follow-up job. Usage and cost stay here, so totals count every attempt billed.
attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("custom_id", sa.String(512), primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error_code", sa.String(64)),
    sa.Column("error_message", sa.Text),
    sa.Column("retryable", sa.Boolean, nullable=False, default=False),
    *_billed(),
    sa.Column("created_at", sa.Float, nullable=False),
)

# Queue limits learned from a provider's refusals (a batch failed for `token_limit_exceeded`,
# say): they lower the configured limit while the configuration is what it was when the
# refusal came (`configured`); a deployment that changes its limit overrides them.
# `scope` is a model, or "" for a limit on all of the provider's models.
queue_limits = sa.Table(
    "queue_limits",
    metadata,
    sa.Column("provider", sa.String(32), primary_key=True),
    sa.Column("scope", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("learned", sa.BigInteger, nullable=False),
    sa.Column("configured", sa.BigInteger, nullable=True),
    sa.Column("learned_at", sa.Float, nullable=False),
    sa.Column("reason", sa.Text),
)

# Where webhooks go, each with its signing secret (Standard Webhooks `whsec_...`).
# `key_id` is an opaque owner (a gateway key id; NULL: the master key, CLI and Python
# API). `scope` "all": every batch of that owner; "batch": only the batches naming it.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64)),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.String(255), nullable=False),
    sa.Column("scope", sa.String(8), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Index("ix_webhook_endpoints_key_id", "key_id"),
)

# The durable outbox: one event per batch transition (written in the transaction that
# makes it), one delivery per endpoint, leased and retried like a job until a 2xx.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # The exact body sent (bytes are signed, so every attempt sends the same ones).
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Index("ix_webhook_events_batch_id", "batch_id"),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("event_id", sa.String(64), nullable=False),
    sa.Column("endpoint_id", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
    # pending -> delivered, or failed once retries ran past the retry window.
    sa.Column("state", sa.String(12), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("delivered_at", sa.Float),
    sa.Column("next_run_at", sa.Float),
    sa.Column("lease_owner", sa.String(64)),
    sa.Column("lease_until", sa.Float),
    sa.UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_endpoint"),
    sa.Index("ix_webhook_deliveries_state_next", "state", "next_run_at"),
    sa.Index("ix_webhook_deliveries_batch_id", "batch_id"),
)
