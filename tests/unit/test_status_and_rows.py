"""OpenAI status mapping and result-row parsing."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from unibatch.engine.views import _live_status
from unibatch.providers.openai.adapter import map_status, parse_row
from unibatch.store.ops import batch_outcome
from unibatch.store.records import JobRecord
from unibatch.types import BatchStatus, RequestStatus


@pytest.mark.parametrize(
    ("native", "ours"),
    [
        ("validating", BatchStatus.VALIDATING),
        ("in_progress", BatchStatus.IN_PROGRESS),
        ("finalizing", BatchStatus.FINALIZING),
        ("completed", BatchStatus.COMPLETED),
        ("failed", BatchStatus.FAILED),
        ("expired", BatchStatus.EXPIRED),
        ("cancelling", BatchStatus.CANCELLING),
        ("cancelled", BatchStatus.CANCELLED),
        ("some_new_status", BatchStatus.IN_PROGRESS),
    ],
)
def test_openai_status_mapping(native: str, ours: BatchStatus) -> None:
    assert map_status(native) is ours


def test_success_row() -> None:
    row = parse_row(
        orjson.dumps(
            {
                "id": "batch_req_1",
                "custom_id": "a",
                "response": {
                    "status_code": 200,
                    "request_id": "req_1",
                    "body": {
                        "object": "chat.completion",
                        "usage": {
                            "prompt_tokens": 10,
                            "completion_tokens": 5,
                            "prompt_tokens_details": {"cached_tokens": 4},
                            "completion_tokens_details": {"reasoning_tokens": 2},
                        },
                    },
                },
                "error": None,
            }
        )
    )
    assert row.status is RequestStatus.SUCCEEDED
    assert (row.usage.input_tokens, row.usage.output_tokens) == (10, 5)
    assert (row.usage.cached_tokens, row.usage.reasoning_tokens) == (4, 2)
    assert row.row_id == "batch_req_1"


def test_http_error_row() -> None:
    row = parse_row(
        orjson.dumps(
            {
                "custom_id": "a",
                "response": {
                    "status_code": 429,
                    "request_id": "r",
                    "body": {"error": {"message": "slow down", "type": "rate_limit", "code": None}},
                },
                "error": None,
            }
        )
    )
    assert row.status is RequestStatus.ERRORED
    assert row.error is not None
    assert (row.error.code, row.error.message, row.error.retryable) == (
        "rate_limit",
        "slow down",
        True,
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("batch_expired", RequestStatus.EXPIRED),
        ("batch_cancelled", RequestStatus.CANCELLED),
        ("something_else", RequestStatus.ERRORED),
    ],
)
def test_never_ran_rows(code: str, status: RequestStatus) -> None:
    row = parse_row(
        orjson.dumps({"custom_id": "a", "response": None, "error": {"code": code, "message": "m"}})
    )
    assert row.status is status


@pytest.mark.parametrize(
    ("jobs", "cancelled", "outcome"),
    [
        ({"completed"}, False, "completed"),
        ({"completed", "failed"}, False, "completed"),
        ({"failed"}, False, "failed"),
        ({"expired", "completed"}, False, "expired"),
        ({"completed"}, True, "cancelled"),
    ],
)
def test_batch_outcome(jobs: set[str], cancelled: bool, outcome: str) -> None:
    assert batch_outcome(jobs, cancelled=cancelled) == outcome


def job(phase: str, status: str) -> JobRecord:
    row = dict.fromkeys(f.name for f in dataclasses.fields(JobRecord))
    return JobRecord.from_row(row | {"mode": "batch", "phase": phase, "status": status})


def test_live_status_is_least_advanced_job() -> None:
    cancelled = False
    assert _live_status(cancelled, [job("pending", "pending")]) is BatchStatus.PENDING
    assert (
        _live_status(cancelled, [job("running", "in_progress"), job("running", "validating")])
        is BatchStatus.VALIDATING
    )
    assert (
        _live_status(cancelled, [job("done", "completed"), job("running", "finalizing")])
        is BatchStatus.FINALIZING
    )
    assert _live_status(True, [job("running", "in_progress")]) is (BatchStatus.CANCELLING)
