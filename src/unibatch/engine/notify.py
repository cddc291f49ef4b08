"""Completion handlers: `"module:function"` called once a batch's results are in."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from unibatch.errors import HandlerError

# Handler retries back off along this schedule (seconds), then every 10 minutes.
HANDLER_BACKOFF = (1.0, 5.0, 30.0, 120.0, 600.0)


def resolve(spec: str) -> Callable[..., Any]:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise HandlerError(f"handler {spec!r} must be written as 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HandlerError(f"handler {spec!r}: cannot import {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise HandlerError(f"handler {spec!r}: {module_name!r} has no {attr!r}")
    if not callable(target):
        raise HandlerError(f"handler {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


async def call(spec: str, batch: Any) -> None:
    result = resolve(spec)(batch)
    if inspect.isawaitable(result):
        await result
