"""The engine's schema, as SQLAlchemy Core tables. The gateway adds its own tables to the
same `metadata` (`unibatch.gateway.tables`); Alembic migrations must produce exactly both.

Timestamps are Unix seconds (floats): portable across SQLite and PostgreSQL and cheap to
compare in lease and schedule queries.
"""

from __future__ import annotations

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
    # Seconds after submit before a job is cancelled; NULL: the provider's own window.
    sa.Column("max_age", sa.Float, nullable=True),
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
)

# One row per submitted request; the body is stored packed (`unibatch.codec`).
requests = sa.Table(
    "requests",
    metadata,
    sa.Column("batch_id", sa.String(64), sa.ForeignKey("batches.id"), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("custom_id", sa.String(512), nullable=False),
    sa.Column("job_id", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.UniqueConstraint("batch_id", "custom_id", name="uq_requests_batch_custom_id"),
    sa.Index("ix_requests_job_id", "job_id", "seq"),
)

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
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cached_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cache_write_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost_input", sa.Float, nullable=False, default=0.0),
    sa.Column("cost_output", sa.Float, nullable=False, default=0.0),
    # Response body in the lingua franca (a ChatCompletion, ...), packed.
    sa.Column("body", sa.LargeBinary),
    # The provider's native row, packed; null when `body` and the columns rebuild it.
    sa.Column("raw", sa.LargeBinary),
    sa.Column("created_at", sa.Float, nullable=False),
)
