"""Imports the gateway runs after it has answered `POST /v1/batches` for an uploaded file.

Validating and storing 100k lines takes seconds; a client with a short timeout would
retry and make a second batch. So the create answers at once with the batch `validating`,
as OpenAI's does, and the import runs as a task of the server. A bad line leaves the batch
`failed` with `errors` naming it (the engine's `keep_failed`); an import stopped with the
server is failed the same way, and one whose process died is failed by the next sweep
(`Engine.sweep_imports`), so no batch stays `validating` for ever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from unibatch.errors import ConfigurationError, InputError

log = logging.getLogger("unibatch.gateway")


class BackgroundImports:
    """The server's running imports."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, batch_id: str, work: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(self._run(batch_id, work), name=f"import {batch_id}")
        # The loop keeps only weak references to tasks.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(batch_id: str, work: Coroutine[Any, Any, object]) -> None:
        try:
            await work
        except (InputError, ConfigurationError) as exc:
            # The caller's mistake; the batch says it (`errors`).
            log.info("batch %s failed validation: %s", batch_id, exc)
        except Exception:
            log.exception("batch %s: the import failed", batch_id)

    async def aclose(self) -> None:
        """Stop the running imports; each leaves its batch `failed` (interrupted)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
