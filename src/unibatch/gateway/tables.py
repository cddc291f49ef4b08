"""The gateway's tables (`unibatch serve`), in the store's one `MetaData`: the migration
chain covers every table of the database, the engine's and the gateway's."""

from __future__ import annotations

import sqlalchemy as sa

from unibatch.store.tables import metadata

# Virtual API keys. Only the SHA-256 of a key is stored: keys are 256-bit random tokens,
# so a fast hash is enough (no dictionary to guess from), and it lets us look a key up
# by an indexed equality instead of trying a slow KDF against every row.
gateway_keys = sa.Table(
    "gateway_keys",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_hint", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("revoked_at", sa.Float),
    sa.Column("max_budget", sa.Float),
    # The result cache for this key's batches unless a batch says otherwise, and the
    # oldest answer (seconds) it takes; answers are never shared between keys.
    sa.Column("cache", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("cache_ttl", sa.Float),
)

# Uploaded files; the bytes live on disk under UNIBATCH_FILES_DIR, named by id.
# `key_id` is null for files the master key created.
gateway_files = sa.Table(
    "gateway_files",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64)),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    # After this the file is gone (hidden at once, deleted by the sweep); NULL: never.
    sa.Column("expires_at", sa.Float),
    sa.Index("ix_gateway_files_key_created", "key_id", "created_at"),
    sa.Index("ix_gateway_files_expires_at", "expires_at"),
)

# Which key owns a batch created through the gateway, and the cost reserved for it.
# Written with the batch's own row (in one transaction), so a worker can never ingest
# results of a gateway batch whose owner is unknown (usage events need it). No foreign key:
# a reservation can outlive a batch that was refused.
gateway_batches = sa.Table(
    "gateway_batches",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(64)),
    sa.Column("input_file_id", sa.String(64)),
    sa.Column("completion_window", sa.String(16), nullable=False),
    sa.Column("estimated_cost", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_gateway_batches_key_created", "key_id", "created_at"),
)

# One usage event per request result of a gateway batch, written by a result hook in the
# transaction that stores the result. The primary key makes a re-ingest a no-op.
gateway_usage = sa.Table(
    "gateway_usage",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("custom_id", sa.String(512), primary_key=True),
    # The job that ran the attempt: a request sent again (a retry) is billed again.
    sa.Column("job_id", sa.String(64), primary_key=True, server_default=""),
    sa.Column("key_id", sa.String(64)),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(128), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cached_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cost", sa.Float, nullable=False, default=0.0),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("ix_gateway_usage_key_model", "key_id", "provider", "model"),
)

# The size in bytes of a finished batch's generated output or error file (`kind`), which
# OpenAI's File object must carry: rendering the file to count it takes seconds for a
# large batch, so it is counted once and kept. A finished batch's results never change.
gateway_output_sizes = sa.Table(
    "gateway_output_sizes",
    metadata,
    sa.Column("batch_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(8), primary_key=True),
    sa.Column("bytes", sa.BigInteger, nullable=False),
)

# `Idempotency-Key`s of batch creates, per caller (`caller`: the key id, or "" for the
# master key). The primary key makes two concurrent creates with one key make one batch;
# `request_hash` (SHA-256 of the request body) tells a retry from a different request.
gateway_idempotency = sa.Table(
    "gateway_idempotency",
    metadata,
    sa.Column("caller", sa.String(64), primary_key=True),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("batch_id", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
