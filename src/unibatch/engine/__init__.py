"""The batch lifecycle: plan -> submit -> poll -> ingest -> finalize -> notify."""

from unibatch.engine.core import Engine

__all__ = ["Engine"]
