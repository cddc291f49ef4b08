"""Alembic environment: migrations run on a connection handed in by `db.upgrade`."""

from __future__ import annotations

from alembic import context

# The gateway's tables share the store's metadata; the chain covers the whole database.
from unibatch.gateway import tables as _gateway_tables  # noqa: F401
from unibatch.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the `unibatch db upgrade` path exists
    raise RuntimeError("run migrations through `unibatch db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
