"""Durable state: tables, named operations and migrations."""

from unibatch.store.db import open_store
from unibatch.store.ops import Store

__all__ = ["Store", "open_store"]
