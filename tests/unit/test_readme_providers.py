"""The README's provider table says what the adapters really do."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from unibatch.errors import InputError
from unibatch.providers.registry import known_providers, spec_of, specs
from unibatch.providers.rules import readme_section

README = Path(__file__).resolve().parents[2] / "README.md"
# A value for each field the table may list, chosen so that any provider refusing the
# field refuses this value.
SAMPLES: dict[str, Any] = {
    "n": 2,
    "seed": 7,
    "logit_bias": {"1": 1},
    "logprobs": True,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.5,
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "parallel_tool_calls": False,
    "prediction": {"type": "content", "content": "x"},
    "store": True,
    "metadata": {"k": "v"},
}
BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def table() -> dict[str, list[str]]:
    text = README.read_text()
    block = text.split("<!-- providers:start -->")[1].split("<!-- providers:end -->")[0]
    rows = [line for line in block.strip().splitlines()[2:] if line.startswith("|")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return {row[0].strip("`"): row[1:] for row in cells}


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def test_every_provider_is_in_the_table() -> None:
    assert sorted(table()) == known_providers()


@pytest.mark.parametrize("name", known_providers())
def test_row_matches_adapter(name: str) -> None:
    endpoints, limits, discount, keys, refused = table()[name]
    spec = spec_of(name)
    translator = spec.adapter_class().translator
    assert sorted(ticked(endpoints)) == sorted(spec.endpoints)
    if spec.batch_limits is None:
        assert limits == "no Batch API: real time"
    else:
        requests, size = re.fullmatch(r"([\d,]+) requests, (\d+) MB", limits).groups()  # type: ignore[union-attr]
        assert int(requests.replace(",", "")) == spec.batch_limits.max_requests
        assert int(size) * 1024 * 1024 == spec.batch_limits.max_bytes
    assert float(discount) == spec.batch_discount
    assert ticked(keys) == [*spec.key_env, spec.base_url_env]
    for field in ticked(refused):
        with pytest.raises(InputError, match=field):
            translator.validate("/v1/chat/completions", {**BODY, field: SAMPLES[field]})
    if not ticked(refused):
        for field, value in SAMPLES.items():
            translator.validate("/v1/chat/completions", {**BODY, field: value})


def test_rules_section_is_generated_from_the_rule_tables() -> None:
    text = README.read_text()
    block = text.split("<!-- rules:start -->\n")[1].split("<!-- rules:end -->")[0]
    expected = readme_section(specs())
    assert block == expected, (
        "README rules are stale: replace the block between the rules markers with "
        "unibatch.providers.rules.readme_section(unibatch.providers.registry.specs())"
    )
