"""Each provider's table of error classes: which failed requests are worth sending again."""

from __future__ import annotations

import orjson
import pytest

from unibatch.emulators.kit import requested_error
from unibatch.providers.anthropic import classify as anthropic
from unibatch.providers.anthropic.adapter import parse_row as anthropic_row
from unibatch.providers.error_classes import retryable_status
from unibatch.providers.gemini import classify as gemini
from unibatch.providers.gemini.adapter import parse_entry
from unibatch.providers.openai import classify as openai
from unibatch.providers.openai.adapter import parse_row as openai_row
from unibatch.providers.xai import classify as xai
from unibatch.providers.xai.adapter import parse_row as xai_row
from unibatch.types import BatchStatus, RequestStatus


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(400, False), (401, False), (403, False), (404, False), (408, True), (413, False),
     (422, False), (429, True), (500, True), (501, False), (502, True), (503, True),
     (504, True), (529, True), (None, False)],
)  # fmt: skip
def test_bare_http_statuses(status: int | None, retryable: bool) -> None:
    assert retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("status", "code", "error_type", "retryable"),
    [
        (429, "rate_limit_exceeded", "requests", True),
        (429, "insufficient_quota", "insufficient_quota", False),
        (429, None, "insufficient_quota", False),
        (500, None, "server_error", True),
        (503, "server_is_overloaded", "service_unavailable_error", True),
        (400, "context_length_exceeded", "invalid_request_error", False),
        (400, "content_policy_violation", "invalid_request_error", False),
        (400, "unsupported_parameter", "invalid_request_error", False),
        (400, "invalid_prompt", "invalid_request_error", False),
        (401, "invalid_api_key", "invalid_request_error", False),
        (404, "model_not_found", "invalid_request_error", False),
        # A code of no known class: the type, then the HTTP status decide.
        (400, "something_new", "invalid_request_error", False),
        (502, "something_new", None, True),
        (None, "batch_expired", None, True),
        (None, "batch_cancelled", None, True),
        (None, "something_new", None, False),
    ],
)
def test_openai_codes(
    status: int | None, code: str | None, error_type: str | None, retryable: bool
) -> None:
    assert openai.retryable(status, code, error_type) is retryable


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, {"message": "slow", "type": "requests", "code": "rate_limit_exceeded"}, True),
        (500, {"message": "oops", "type": "server_error", "code": None}, True),
        (400, {"message": "bad", "type": "invalid_request_error", "code": None}, False),
        (429, {"message": "pay", "type": "insufficient_quota", "code": None}, False),
    ],
)
def test_openai_error_file_rows(status: int, error: dict[str, object], retryable: bool) -> None:
    body = {"error": error}
    line = {"custom_id": "a", "response": {"status_code": status, "body": body}, "error": None}
    row = openai_row(orjson.dumps(line))
    assert row.error is not None and row.error.retryable is retryable


@pytest.mark.parametrize(
    ("error_type", "retryable"),
    [
        ("invalid_request_error", False),
        ("authentication_error", False),
        ("billing_error", False),
        ("permission_error", False),
        ("not_found_error", False),
        ("request_too_large", False),
        ("rate_limit_error", True),
        ("api_error", True),
        ("timeout_error", True),
        ("overloaded_error", True),
        ("batch_expired", True),
        ("batch_cancelled", True),
        ("something_new", False),
        (None, False),
    ],
)
def test_anthropic_types(error_type: str | None, retryable: bool) -> None:
    assert anthropic.retryable(error_type) is retryable


@pytest.mark.parametrize(
    ("result", "retryable"),
    [
        ({"type": "errored", "error": {"error": {"type": "overloaded_error"}}}, True),
        ({"type": "errored", "error": {"error": {"type": "invalid_request_error"}}}, False),
        ({"type": "expired"}, True),
        ({"type": "canceled"}, True),
    ],
)
def test_anthropic_result_rows(result: dict[str, object], retryable: bool) -> None:
    row = anthropic_row(orjson.dumps({"custom_id": "a", "result": result}))
    assert row.error is not None and row.error.retryable is retryable


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        (3, None, False),  # INVALID_ARGUMENT
        (9, None, False),  # FAILED_PRECONDITION
        (7, None, False),  # PERMISSION_DENIED
        (16, None, False),  # UNAUTHENTICATED
        (5, None, False),  # NOT_FOUND
        (12, None, False),  # UNIMPLEMENTED
        (8, None, True),  # RESOURCE_EXHAUSTED
        (13, None, True),  # INTERNAL
        (14, None, True),  # UNAVAILABLE
        (4, None, True),  # DEADLINE_EXCEEDED
        (10, None, True),  # ABORTED
        (400, "INVALID_ARGUMENT", False),
        (400, "FAILED_PRECONDITION", False),
        (403, "PERMISSION_DENIED", False),
        (404, "NOT_FOUND", False),
        (429, "RESOURCE_EXHAUSTED", True),
        (500, "INTERNAL", True),
        (503, "UNAVAILABLE", True),
        (504, "DEADLINE_EXCEEDED", True),
        (429, None, True),
        (400, None, False),
        (99, None, False),  # a google.rpc.Code that does not exist
    ],
)
def test_gemini_statuses(code: int, status: str | None, retryable: bool) -> None:
    assert gemini.retryable(code, status) is retryable


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [
        ("SAFETY", False),
        ("RECITATION", False),
        ("PROHIBITED_CONTENT", False),
        ("BLOCKLIST", False),
        ("SPII", False),
        ("MISSING_THOUGHT_SIGNATURE", False),
        ("UNEXPECTED_TOOL_CALL", False),
        ("OTHER", True),
        ("MALFORMED_FUNCTION_CALL", True),
        ("MALFORMED_RESPONSE", True),
        ("FINISH_REASON_UNSPECIFIED", True),
        ("SOMETHING_NEW", False),
    ],
)
def test_gemini_finish_reasons(reason: str, retryable: bool) -> None:
    assert gemini.finish_retryable(reason) is retryable


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ({"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}, True),
        ({"code": 8, "message": "Quota"}, True),
        ({"code": 400, "message": "Bad", "status": "INVALID_ARGUMENT"}, False),
        ({"code": 3, "message": "Bad"}, False),
    ],
)
def test_gemini_error_entries(error: dict[str, object], retryable: bool) -> None:
    entry = {"key": "ubseq-0", "error": error}
    row = parse_entry(entry, "ubseq-0", "gemini-2.5-flash", orjson.dumps(entry))
    assert row.error is not None and row.error.retryable is retryable


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        ("Maximum number of tokens max_tokens must be positive but max_tokens = -5", False),
        ("Client specified an invalid argument", False),
        ("Model grok-x is not supported for batch processing.", False),
        ("Incorrect API key provided", False),
        ("This model's maximum context length is 131072 tokens", False),
        ("Internal error", True),
        ("Internal error: max_tokens must be positive", False),
        ("The service is currently unavailable", True),
        ("Resource exhausted: too many requests", True),
        ("Rate limit reached", True),
        ("Request timed out", True),
        ("Deadline exceeded", True),
        ("The model is overloaded, try again later", True),
        ("Something nobody has seen", False),
        ({"code": 14, "message": "unavailable"}, True),
        ({"code": 3, "message": "internal"}, False),
        ({"message": "Internal error"}, True),
    ],
)
def test_xai_messages(error: object, retryable: bool) -> None:
    assert xai.retryable(error) is retryable


@pytest.mark.parametrize(
    ("batch_status", "status", "code", "retryable"),
    [
        (BatchStatus.COMPLETED, RequestStatus.CANCELLED, "batch_cancelled", True),
        (BatchStatus.EXPIRED, RequestStatus.EXPIRED, "batch_expired", True),
        (BatchStatus.FAILED, RequestStatus.ERRORED, "batch_failed", False),
    ],
)
def test_xai_unrun_rows(
    batch_status: BatchStatus, status: RequestStatus, code: str, retryable: bool
) -> None:
    row = xai_row(
        {"batch_request_id": "a", "batch_result": {"error": "Batch cancelled"}}, batch_status
    )
    assert row.error is not None
    assert (row.status, row.error.code, row.error.retryable) == (status, code, retryable)


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b'{"content": "hello emulate-error:429"}', 429),
        ('{"content": "emulate-error:503 please"}', 503),
        (b'{"content": "emulate-error:200"}', None),
        (b'{"content": "emulate-error:"}', None),
        (b'{"content": "hello"}', None),
    ],
)
def test_a_request_asks_the_emulators_to_fail(raw: bytes | str, status: int | None) -> None:
    assert requested_error(raw) == status
