"""Whichever provider module a process imports first, every provider is known (and
priced) in it: the registry reads them all on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from unibatch.providers.registry import BUILTIN
from unibatch.providers.spec import load_object

CODE = """
import {first}
from unibatch.gateway.convert import estimate_cost
from unibatch.pricing import Pricer
from unibatch.providers.registry import known_providers, split_model
line = {{"custom_id": "a", "body": {{"model": "anthropic/claude-haiku-4-5", "max_tokens": 10,
        "messages": [{{"role": "user", "content": "hi"}}]}}}}
print(split_model("anthropic/claude-haiku-4-5"))
print(known_providers())
print(estimate_cost([line], pricer=Pricer(), default_model=None, default_max_tokens=1) > 0)
"""


@pytest.mark.parametrize(
    "first", ["unibatch.providers.openai", "unibatch.providers.openai.adapter"]
)
def test_a_provider_imported_first_hides_no_other(first: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CODE.format(first=first)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "('anthropic', 'claude-haiku-4-5')",
        str(sorted(load_object(reference).name for reference in BUILTIN)),
        "True",
    ]
