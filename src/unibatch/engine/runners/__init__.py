"""Runners, one per job mode (`JobMode`): the only code that differs between modes."""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.engine.runners.base import Runner
from unibatch.engine.runners.batch import BatchRunner
from unibatch.store.records import JobMode

RUNNERS: Mapping[JobMode, Runner] = {JobMode.BATCH: BatchRunner()}

__all__ = ["RUNNERS", "BatchRunner", "Runner"]
