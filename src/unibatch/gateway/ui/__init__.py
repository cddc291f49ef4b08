"""The web dashboard (`/ui`): batches with live progress, a batch's jobs, errors and
requests, keys with their spend and a usage chart, server-rendered."""

from __future__ import annotations

from unibatch.gateway.ui.routes import install

__all__ = ["install"]
