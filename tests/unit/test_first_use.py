"""What a new user meets first: files from spreadsheets, and JSON errors that point at
one place."""

from __future__ import annotations

import codecs
from pathlib import Path

import orjson
import pytest

from unibatch.engine.inputs import RequestReader
from unibatch.engine.plan import Planner
from unibatch.errors import InputError
from unibatch.providers.registry import ProviderSet

LINE = {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}


async def read(path: Path) -> int:
    reader = RequestReader(
        path,
        batch_id="ubb_t",
        planner=Planner("ubb_t", 0.0),
        providers=ProviderSet({"OPENAI_API_KEY": "k"}),
        model="openai/gpt-4o-mini",
    )
    async for _ in reader.chunks():
        pass
    return reader.count


async def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + orjson.dumps(LINE) + b"\n")
    assert await read(path) == 1


async def test_a_json_error_names_one_line_and_its_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(orjson.dumps(LINE) + b"\n" + b'{"custom_id": "b", "body": {]}\n')
    with pytest.raises(InputError) as caught:
        await read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: not valid JSON (")
    assert "column 29" in message and "line 1" not in message
