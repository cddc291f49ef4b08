"""Ingest records: a normalised result row becomes the store's column tuple."""

from __future__ import annotations

import pytest

from unibatch import codec
from unibatch.codec import RESULT_COLUMNS, SUCCESS_COLUMNS, SUCCESS_CONSTANTS, record_dicts
from unibatch.decode.records import extend, records
from unibatch.pricing import Rates
from unibatch.providers.base import ResultRow
from unibatch.store.tables import results
from unibatch.types import ErrorInfo, RequestStatus, Usage

RATES = Rates(input=2e-6, cached_input=1e-6, output=8e-6)


def test_every_column_in_table_order() -> None:
    ok = ResultRow(
        custom_id="a",
        status=RequestStatus.SUCCEEDED,
        status_code=200,
        body={"id": "chatcmpl-1", "choices": []},
        usage=Usage(input_tokens=100, output_tokens=10, cached_tokens=40, reasoning_tokens=3),
        row_id="batch_req_1",
        request_id="req_1",
    )
    failed = ResultRow(
        custom_id="b",
        status=RequestStatus.ERRORED,
        status_code=429,
        error=ErrorInfo(code="rate_limit", message="slow down", retryable=True),
        raw=b'{"native": 1}',
    )
    got, unresolved = records("ubb_1", "ubj_1", RATES, [ok, failed], now=12.5)
    assert unresolved == []
    # A plain success travels in the short form, anything else as the full row.
    assert [len(r) for r in got] == [len(SUCCESS_COLUMNS), len(RESULT_COLUMNS)]
    first, second = record_dicts(got)
    assert set(first) == set(second) == set(RESULT_COLUMNS)
    assert first == {
        "batch_id": "ubb_1",
        "custom_id": "a",
        "job_id": "ubj_1",
        "status": "succeeded",
        "status_code": 200,
        "row_id": "batch_req_1",
        "request_id": "req_1",
        "error_code": None,
        "error_message": None,
        "retryable": False,
        "input_tokens": 100,
        "output_tokens": 10,
        "cached_tokens": 40,
        "reasoning_tokens": 3,
        "cache_write_tokens": 0,
        "cost_input": pytest.approx(60 * 2e-6 + 40 * 1e-6),
        "cost_output": pytest.approx(10 * 8e-6),
        "body": codec.pack({"id": "chatcmpl-1", "choices": []}),
        "raw": None,
        "created_at": 12.5,
    }
    assert codec.unpack(first["body"]) == {"id": "chatcmpl-1", "choices": []}
    assert second["status"] == "errored"
    assert (second["error_code"], second["error_message"], second["retryable"]) == (
        "rate_limit",
        "slow down",
        True,
    )
    assert second["body"] is None
    assert codec.unpack(second["raw"]) == {"native": 1}


def test_full_form_is_the_results_table_in_column_order() -> None:
    assert tuple(column.name for column in results.columns) == RESULT_COLUMNS


def test_short_form_plus_constants_is_the_whole_row() -> None:
    assert sorted([*SUCCESS_COLUMNS, *SUCCESS_CONSTANTS]) == sorted(RESULT_COLUMNS)
    # Ingest finds the batch and the custom_id at the same place in either form.
    for name in ("batch_id", "custom_id"):
        assert SUCCESS_COLUMNS.index(name) == RESULT_COLUMNS.index(name)


def test_rows_known_only_by_seq_are_listed_for_resolution() -> None:
    rows = [
        ResultRow(custom_id="a", status=RequestStatus.SUCCEEDED),
        ResultRow(custom_id=None, seq=7, status=RequestStatus.SUCCEEDED),
        ResultRow(custom_id=None, seq=9, status=RequestStatus.ERRORED),
    ]
    got, unresolved = records("ubb_1", "ubj_1", RATES, rows, now=0.0)
    assert unresolved == [(1, 7), (2, 9)]
    assert [r[RESULT_COLUMNS.index("custom_id")] for r in got] == ["a", None, None]


def test_cached_tokens_above_input_are_not_priced_below_zero() -> None:
    row = ResultRow(
        custom_id="a",
        status=RequestStatus.SUCCEEDED,
        usage=Usage(input_tokens=10, cached_tokens=50),
    )
    (record,), _ = records("b", "j", RATES, [row], now=0.0)
    assert record_dicts([record])[0]["cost_input"] == pytest.approx(10 * 1e-6)


def test_gathered_chunks_keep_unresolved_rows_pointing_at_them() -> None:
    first = [ResultRow(custom_id="a", status=RequestStatus.SUCCEEDED)]
    second = [
        ResultRow(custom_id="b", status=RequestStatus.SUCCEEDED),
        ResultRow(custom_id=None, seq=4, status=RequestStatus.SUCCEEDED),
    ]
    chunk: list = []
    unresolved: list = []
    for rows in (first, second):
        extend(chunk, unresolved, *records("b", "j", RATES, rows, now=0.0))
    assert unresolved == [(2, 4)]
    assert chunk[2][RESULT_COLUMNS.index("custom_id")] is None


def test_cache_writes_are_priced_at_the_cache_write_rates() -> None:
    # Anthropic-like rates: writes cost 1.25 times input for five minutes, 2 times for an
    # hour, reads a tenth.
    rates = Rates(
        input=2e-6, cached_input=0.2e-6, output=8e-6, cache_write=2.5e-6, cache_write_1h=4e-6
    )
    usage = Usage(
        input_tokens=1000, cached_tokens=300, cache_write_tokens=500, cache_write_1h_tokens=100
    )
    row = ResultRow(custom_id="a", status=RequestStatus.SUCCEEDED, usage=usage)
    (record,), _ = records("b", "j", rates, [row], now=0.0)
    stored = record_dicts([record])[0]
    assert stored["cache_write_tokens"] == 500
    # 200 fresh, 300 read, 400 written for five minutes, 100 for an hour.
    expected = 200 * 2e-6 + 300 * 0.2e-6 + 400 * 2.5e-6 + 100 * 4e-6
    assert stored["cost_input"] == pytest.approx(expected)
    assert rates.cost(usage).input == pytest.approx(expected)
    # Without cache-write prices, writes cost what any input token does.
    assert RATES.cost(usage).input == pytest.approx(700 * 2e-6 + 300 * 1e-6)


def test_nul_in_provider_text_is_replaced_so_postgresql_can_store_it() -> None:
    # PostgreSQL's text type refuses NUL: a provider message holding one would make the
    # job's ingest fail on every attempt.
    row = ResultRow(
        custom_id="a",
        status=RequestStatus.ERRORED,
        row_id="row\x00",
        request_id="req\x00",
        error=ErrorInfo(code="bad\x00code", message="broken \x00 text"),
    )
    (record,), _ = records("b", "j", RATES, [row], now=0.0)
    stored = record_dicts([record])[0]
    for column in ("row_id", "request_id", "error_code", "error_message"):
        assert "\x00" not in stored[column] and "\ufffd" in stored[column]
    assert stored["error_message"] == "broken \ufffd text"
