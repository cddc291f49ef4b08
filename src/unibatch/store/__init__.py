"""Durable state: tables, named operations and migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unibatch.store.db import open_store
    from unibatch.store.ops import Store

__all__ = ["Store", "open_store"]


def __getattr__(name: str) -> Any:
    # Lazy, so that the tables and records load without Alembic and the database drivers.
    if name == "Store":
        from unibatch.store.ops import Store

        return Store
    if name == "open_store":
        from unibatch.store.db import open_store

        return open_store
    raise AttributeError(f"module 'unibatch.store' has no attribute {name!r}")
