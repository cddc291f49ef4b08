"""The batch lifecycle: plan -> submit -> poll -> ingest -> finalize -> notify."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unibatch.engine.core import Engine

__all__ = ["Engine"]


def __getattr__(name: str) -> Any:
    # Lazy: `Engine` brings the providers (httpx), pricing and the decoder; a command that
    # only reads the store (`unibatch status`) uses `unibatch.engine.views` without them.
    if name == "Engine":
        from unibatch.engine.core import Engine

        return Engine
    raise AttributeError(f"module 'unibatch.engine' has no attribute {name!r}")
