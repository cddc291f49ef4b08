"""Layers import only downwards: the engine knows nothing of the gateway, and the store
and the decoder share `unibatch.codec` without importing each other."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unibatch.engine.runners import RUNNERS
from unibatch.store.records import JobMode


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("unibatch.engine", "unibatch.gateway"),
        ("unibatch.store.ops", "unibatch.decode"),
        ("unibatch.store.ops", "unibatch.gateway"),
        ("unibatch.decode.child", "unibatch.store"),
    ],
)
def test_module_does_not_load_layer(module: str, forbidden: str) -> None:
    code = (
        f"import sys, {module}; "
        f"print(sorted(m for m in sys.modules if m.split('.')[:2] == {forbidden!r}.split('.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_every_job_mode_has_a_runner() -> None:
    assert set(RUNNERS) == set(JobMode)
