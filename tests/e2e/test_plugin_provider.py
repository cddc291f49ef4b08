"""A provider added by another package through the `unibatch.providers` entry point.

The plugin here is what a company with an OpenAI-compatible Batch API would publish: a
spec that reuses the OpenAI adapter under its own name, key and base URL. It is installed
the way pip installs a package (a module and a `.dist-info` with `entry_points.txt` on the
path), then the CLI runs a batch through it; the job is large enough for the ingest
decoder helper, a second process that must find the plugin the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support.emulated import chat_lines, emulator_state
from tests.support.processes import REPO, run
from unibatch.pricing import list_price
from unibatch.providers.registry import BUILTIN
from unibatch.providers.spec import load_object

PLUGIN = """
from dataclasses import replace

from unibatch.providers.openai import SPEC as OPENAI

SPEC = replace(
    OPENAI,
    name="acme",
    key_env=("ACME_API_KEY",),
    base_url_env="ACME_BASE_URL",
    default_base_url="https://batch.acme.invalid/v1",
    batch_discount=0.25,
    prices_as="openai",
    emulator=None,
    emulator_prefix=None,
)
"""


def install_plugin(site: Path) -> None:
    (site / "acme_batch.py").write_text(PLUGIN)
    dist = site / "acme_batch-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-batch\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[unibatch.providers]\nacme = acme_batch:SPEC\n")


def test_entry_point_provider_runs_a_batch_through_the_decoder_helper(
    emulator: Any, tmp_path: Path, sqlite_url: str
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    requests = tmp_path / "in.jsonl"
    lines = chat_lines(60, model="acme/gpt-4o-mini")
    requests.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    out = tmp_path / "out.jsonl"
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        "UNIBATCH_DATABASE_URL": sqlite_url,
        "UNIBATCH_POLL_SCHEDULE": "0.1",
        # Every job of 10 requests or more is decoded in the helper process.
        "UNIBATCH_INGEST_PROCESS_FROM": "10",
        "ACME_API_KEY": "acme-key",
        "ACME_BASE_URL": emulator.base_url("openai"),
    }
    before = len(emulator_state(emulator)["batches"])

    result = run(
        ["submit", str(requests), "--wait", "-o", str(out), "--format", "unified"],
        env,
        timeout=180,
    )

    assert result.returncode == 0, result.stderr
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["custom_id"] for r in rows] == [line["custom_id"] for line in lines]
    assert {r["provider"] for r in rows} == {"acme"}
    assert all(r["status"] == "succeeded" for r in rows)
    # Priced at the plugin's own discount: a quarter of OpenAI's list price.
    price = list_price("openai", "gpt-4o-mini")
    assert price is not None
    for row in rows:
        usage = row["usage"]
        listed = usage["input_tokens"] * price.input + usage["output_tokens"] * price.output
        assert row["cost"]["total"] == pytest.approx(listed * 0.25 / 1e6)
    state = emulator_state(emulator)
    assert len(state["batches"]) == before + 1


def test_plugin_provider_is_listed_with_the_builtins(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    install_plugin(site)
    code = "from unibatch.providers.registry import known_providers; print(known_providers())"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    listed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    builtin = [load_object(reference).name for reference in BUILTIN]
    assert listed.stdout.strip() == str(sorted(["acme", *builtin]))
