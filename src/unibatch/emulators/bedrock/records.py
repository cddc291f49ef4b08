"""Bedrock batch records: reading an input file as the service validates it, and the
output records it writes (https://docs.aws.amazon.com/bedrock/latest/userguide/
batch-inference-data.html and batch-inference-results.html).

Input lines are `{"recordId", "modelInput"}`; an output line repeats both and adds
`modelOutput` (the model's InvokeModel response) or `error` (`errorCode`,
`errorMessage`). Validation checks the file's shape and record counts, not the bodies:
a body the model refuses becomes that record's `error`, as on the service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from unibatch.providers.bedrock.translate import ANTHROPIC_VERSION, claude_name

from ..anthropic.results import fake_message
from ..anthropic.validate import PARAMS
from ..kit.fakes import hex_digest, unit
from ..kit.faults import requested_error

# The default quotas ("Minimum number of records per batch inference job", "Records per
# batch inference job"), per model in Service Quotas.
MIN_RECORDS = 100
MAX_RECORDS = 50_000


@dataclass(frozen=True)
class Scan:
    """An input file as validation saw it: its record count, or why the job fails."""

    total: int = 0
    error: str | None = None


def scan(path: Path, min_records: int) -> Scan:
    """Validate the records of `path`, stopping at the first bad line."""
    total = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError:
                return Scan(error=f"Invalid JSON in the input file at line {lineno}.")
            if not isinstance(record, dict) or not isinstance(record.get("modelInput"), dict):
                msg = f"Line {lineno} of the input file has no modelInput object."
                return Scan(error=msg)
            total += 1
    if total < min_records:
        return Scan(
            error=(
                f"The number of records in the input ({total}) is less than the minimum of "
                f"{min_records} records per batch inference job."
            )
        )
    if total > MAX_RECORDS:
        return Scan(error=f"The input has {total} records, more than the quota of {MAX_RECORDS}.")
    return Scan(total=total)


def claude_error(model_input: dict[str, Any]) -> str | None:
    """What Bedrock's Claude answers a malformed body with (a 400 ValidationException)."""
    extra = sorted(set(model_input) - _CLAUDE_KEYS)
    if extra:
        return f"Malformed input request: extraneous key [{extra[0]}] is not permitted"
    if model_input.get("anthropic_version") != ANTHROPIC_VERSION:
        return "Malformed input request: anthropic_version must be bedrock-2023-05-31"
    if not isinstance(model_input.get("max_tokens"), int):
        return "Malformed input request: #: required key [max_tokens] not found"
    if not isinstance(model_input.get("messages"), list) or not model_input["messages"]:
        return "Malformed input request: #: required key [messages] not found"
    return None


# The Messages API's parameters less those of Anthropic's own API only (`model` is the job's,
# the rest are features Bedrock's Claude body does not take), plus Bedrock's two.
_CLAUDE_KEYS = (
    PARAMS - {"model", "metadata", "stream", "service_tier", "container", "mcp_servers"}
) | {"anthropic_version", "anthropic_beta"}


def outcome(
    job_id: str, model_id: str, record: dict[str, Any], raw: bytes, rate: float, seed: int
) -> dict[str, Any]:
    """The output record of one input record that ran."""
    record_id = str(record.get("recordId") or hex_digest(job_id, raw, size=6)[:11])
    model_input = record["modelInput"]
    out: dict[str, Any] = {"recordId": record_id, "modelInput": model_input}
    asked = requested_error(raw)
    name = claude_name(model_id) or model_id
    if asked is not None:
        out["error"] = {"errorCode": asked, "errorMessage": f"Emulated HTTP {asked}."}
    elif (problem := claude_error(model_input)) is not None:
        out["error"] = {"errorCode": 400, "errorMessage": problem}
    elif rate > 0 and unit(seed, "fail", record_id) < rate:
        out["error"] = {"errorCode": 500, "errorMessage": "Internal server error (emulated)."}
    else:
        rid = hex_digest(job_id, record_id)
        out["modelOutput"] = fake_message({**model_input, "model": name}, rid)
    return out


def output_lines(
    path: Path, job_id: str, model_id: str, done: int, rate: float, seed: int
) -> Iterator[bytes]:
    """The first `done` records' output lines, in reverse order: the service does not keep
    the input order, so clients must match on `recordId`."""
    lines: list[bytes] = []
    with path.open("rb") as fh:
        for raw in fh:
            if len(lines) == done:
                break
            if raw.strip():
                record = orjson.loads(raw)
                found = outcome(job_id, model_id, record, raw, rate, seed)
                lines.append(orjson.dumps(found, option=orjson.OPT_APPEND_NEWLINE))
    return reversed(lines)
