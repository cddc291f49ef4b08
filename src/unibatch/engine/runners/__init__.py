"""Runners, one per job mode (`JobMode`): the only code that differs between modes."""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.engine.runners.base import Runner
from unibatch.engine.runners.batch import BatchRunner
from unibatch.engine.runners.cache import CacheRunner
from unibatch.engine.runners.realtime import RealtimeRunner
from unibatch.store.records import JobMode

RUNNERS: Mapping[JobMode, Runner] = {
    JobMode.BATCH: BatchRunner(),
    JobMode.REALTIME: RealtimeRunner(),
    JobMode.CACHE: CacheRunner(),
}

__all__ = ["RUNNERS", "BatchRunner", "CacheRunner", "RealtimeRunner", "Runner"]
