"""Identifiers: time-ordered, so ids sort like their creation (shared with the store)."""

from __future__ import annotations

from unibatch.ids import new_id

__all__ = ["new_id"]
