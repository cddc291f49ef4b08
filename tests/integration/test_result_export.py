"""Exports written from the stored rows (`Engine.result_lines`, used by `unibatch results`
and the gateway's files and JSONL results) are byte for byte the lines of the `Result`
objects: `orjson.dumps(result.as_openai(batch_id))` and `result.as_unified()`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa

from unibatch.cli.batches import write_results
from unibatch.cli.common import Format
from unibatch.config import Settings
from unibatch.decode.records import records
from unibatch.engine import Engine
from unibatch.engine.export import OPENAI_COLUMNS, UNIFIED_COLUMNS, openai_lines, unified_lines
from unibatch.gateway.convert import output_lines
from unibatch.pricing import Rates
from unibatch.providers.base import ResultRow
from unibatch.providers.registry import ProviderSet
from unibatch.store.lite import Reader
from unibatch.store.tables import jobs
from unibatch.types import ErrorInfo, RequestStatus, Usage

RATES = Rates(input=1.5e-7 / 2, cached_input=7.5e-8 / 2, output=6e-7 / 2)
NEWLINE = orjson.OPT_APPEND_NEWLINE


def _completion(text: str) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        "score": 0.1 + 0.2,
    }


def _rows() -> list[ResultRow]:
    ok = RequestStatus.SUCCEEDED
    return [
        ResultRow(
            custom_id="ok-unicode",
            status=ok,
            status_code=200,
            body=_completion('héllo 🌍 "quoted" \\ \n\t\u2028 <b>&</b> 日本語'),
            usage=Usage(input_tokens=12, output_tokens=3, cached_tokens=4, reasoning_tokens=1),
            row_id="batch_req_1",
            request_id="req_1",
        ),
        # Over the compression threshold: stored zlib-compressed.
        ResultRow(
            custom_id="ok-large",
            status=ok,
            status_code=200,
            body=_completion("x" * 20_000),
            usage=Usage(input_tokens=10, output_tokens=5000, cache_write_tokens=2),
        ),
        # No row id (the line's id is made up), no request id, an empty row id.
        ResultRow(custom_id="ok-no-ids", status=ok, status_code=200, body=_completion("a")),
        ResultRow(custom_id="ok-empty-id", status=ok, status_code=200, body={}, row_id=""),
        # A failed request with the provider's answer: a response, no error.
        ResultRow(
            custom_id="errored-with-body",
            status=RequestStatus.ERRORED,
            status_code=400,
            body={"error": {"message": "bad ünicode", "type": "invalid_request_error"}},
            error=ErrorInfo("invalid_request_error", "bad ünicode"),
            row_id="batch_req_2",
            request_id="req_2",
            # The provider's own spelling: spaces and escapes that orjson writes otherwise.
            raw=b'{ "native" : 1, "text": "caf\\u00e9", "n": 1.0E2 }',
        ),
        ResultRow(
            custom_id="errored-no-body",
            status=RequestStatus.ERRORED,
            error=ErrorInfo("server_error", "", retryable=True),
        ),
        ResultRow(
            custom_id="expired",
            status=RequestStatus.EXPIRED,
            error=ErrorInfo("batch_expired", "not run before the batch expired"),
        ),
        ResultRow(
            custom_id="cancelled",
            status=RequestStatus.CANCELLED,
            error=ErrorInfo("batch_cancelled", "cancelled before it ran"),
        ),
        # A status code but no body, and a body but no status code: neither is a response.
        ResultRow(custom_id="code-only", status=RequestStatus.ERRORED, status_code=500),
        ResultRow(custom_id="body-only", status=ok, body=_completion("no code")),
    ]


@pytest.fixture
async def finished(database_url: str) -> AsyncIterator[tuple[Engine, str]]:
    """A batch whose requests (one has no result yet) have the results of `_rows`."""
    rows = _rows()
    engine = await Engine.open(
        database_url,
        settings=Settings(),
        providers=ProviderSet({"OPENAI_API_KEY": "test"}),
    )
    lines = [
        {
            "custom_id": row.custom_id,
            "body": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
        }
        for row in rows
    ] + [
        {
            "custom_id": "no-result",
            "body": {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "y"}]},
        }
    ]
    batch_id = await engine.create_batch(lines)
    (job,) = await engine.store.jobs_of(batch_id)
    async with engine.store.engine.begin() as conn:
        await conn.execute(jobs.update().values(lease_owner="test", lease_until=1e12))
    built, _ = records(batch_id, job.id, RATES, rows, now=1.0)
    assert await engine.store.insert_results(built, job_id=job.id, owner="test", lease_until=1e12)
    yield engine, batch_id
    await engine.aclose()


async def _joined(blocks: AsyncIterator[list[bytes]] | AsyncIterator[bytes]) -> bytes:
    return b"".join(
        [b"".join(block) if isinstance(block, list) else block async for block in blocks]
    )


async def test_openai_lines_are_those_of_the_results(finished: tuple[Engine, str]) -> None:
    engine, batch_id = finished
    expected = b"".join(
        [
            orjson.dumps(r.as_openai(batch_id), option=NEWLINE)
            async for r in engine.results(batch_id)
        ]
    )
    got = await _joined(engine.result_lines(batch_id, "openai"))
    assert got.splitlines() == expected.splitlines()
    assert got == expected
    assert len(got.splitlines()) == len(_rows())


async def test_unified_lines_are_those_of_the_results(finished: tuple[Engine, str]) -> None:
    engine, batch_id = finished
    expected = b"".join(
        [orjson.dumps(r.as_unified(), option=NEWLINE) async for r in engine.results(batch_id)]
    )
    got = await _joined(engine.result_lines(batch_id, "unified"))
    assert got.splitlines() == expected.splitlines()
    assert got == expected


async def test_output_and_error_files_split_by_status(finished: tuple[Engine, str]) -> None:
    engine, batch_id = finished
    results = [r async for r in engine.results(batch_id)]
    for kind in ("output", "error"):
        expected = b"".join(
            orjson.dumps(r.as_openai(batch_id), option=NEWLINE)
            for r in results
            if (r.status is RequestStatus.SUCCEEDED) == (kind == "output")
        )
        assert await _joined(output_lines(engine, batch_id, kind)) == expected


async def test_rows_are_read_in_chunks_in_input_order(finished: tuple[Engine, str]) -> None:
    engine, batch_id = finished
    store = engine.store
    whole = await _joined(engine.result_lines(batch_id, "openai"))
    openai = [
        b"".join(openai_lines(batch_id, rows))
        async for rows in store.iter_result_rows(batch_id, OPENAI_COLUMNS, chunk=3)
    ]
    # 10 results in chunks of 3 (the request without a result is not there).
    assert [block.count(b"\n") for block in openai] == [3, 3, 3, 1]
    assert b"".join(openai) == whole
    unified = [
        b"".join(unified_lines(rows))
        async for rows in store.iter_result_rows(batch_id, UNIFIED_COLUMNS, chunk=4)
    ]
    assert b"".join(unified) == await _joined(engine.result_lines(batch_id, "unified"))


async def test_an_export_stopped_early_leaves_the_store_usable(
    finished: tuple[Engine, str],
) -> None:
    engine, batch_id = finished
    rows = engine.store.iter_result_rows(batch_id, OPENAI_COLUMNS, chunk=2)
    first = await anext(rows)  # the second chunk is being read ahead now
    assert len(first) == 2
    await rows.aclose()
    async with engine.store.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT 1"))).scalar() == 1
    assert len((await _joined(engine.result_lines(batch_id, "openai"))).splitlines()) == 10


@pytest.mark.parametrize("fmt", ["openai", "unified"])
async def test_results_command_writes_those_lines(
    finished: tuple[Engine, str], fmt: str, tmp_path: Path
) -> None:
    engine, batch_id = finished
    out = tmp_path / "results.jsonl"
    count = await write_results(engine.store, batch_id, out, Format(fmt))
    expected = b"".join(
        [
            orjson.dumps(
                r.as_openai(batch_id) if fmt == "openai" else r.as_unified(), option=NEWLINE
            )
            async for r in engine.results(batch_id)
        ]
    )
    assert out.read_bytes() == expected
    assert count == len(_rows())
    assert not (tmp_path / "results.jsonl.partial").exists()


@pytest.mark.parametrize("fmt", ["openai", "unified"])
async def test_results_read_without_sqlalchemy_are_the_same(
    finished: tuple[Engine, str], fmt: str, tmp_path: Path
) -> None:
    # `unibatch results` on SQLite reads through `store.lite` (PostgreSQL: not there).
    engine, batch_id = finished
    reader = Reader.open(engine.settings.database_url)
    if engine.store.engine.dialect.name != "sqlite":
        assert reader is None
        return
    assert reader is not None
    try:
        count = await write_results(reader, batch_id, tmp_path / "lite.jsonl", Format(fmt))
    finally:
        reader.close()
    await write_results(engine.store, batch_id, tmp_path / "store.jsonl", Format(fmt))
    assert (tmp_path / "lite.jsonl").read_bytes() == (tmp_path / "store.jsonl").read_bytes()
    assert count == len(_rows())
