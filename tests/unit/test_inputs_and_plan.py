"""Reading request files and planning jobs: bad input is named by file and line."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from unibatch.engine.inputs import RequestReader
from unibatch.engine.plan import Planner
from unibatch.errors import ConfigurationError, InputError, LimitError, UnknownProviderError
from unibatch.providers.anthropic import SPEC as ANTHROPIC
from unibatch.providers.anthropic.adapter import AnthropicProvider
from unibatch.providers.base import RequestLine
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.providers.registry import ProviderSet, split_model
from unibatch.providers.spec import BatchLimits, ProviderSpec

ENV = {"OPENAI_API_KEY": "k"}


def line(cid: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": cid, "body": {"messages": [{"role": "user", "content": "hi"}], **body}}


def limited(spec: ProviderSpec, *, requests: int = 10**9, size: int = 10**12) -> ProviderSpec:
    return replace(spec, batch_limits=BatchLimits(max_requests=requests, max_bytes=size))


async def read(
    source: Any,
    model: str | None = "openai/gpt-4o-mini",
    env: Any = ENV,
    specs: dict[str, ProviderSpec] | None = None,
) -> Planner:
    planner = Planner("ubb_test", 0.0)
    providers = ProviderSet(env, specs=specs)
    reader = RequestReader(
        source, batch_id="ubb_test", planner=planner, providers=providers, model=model
    )
    async for _ in reader.chunks():
        pass
    return planner


def nested(depth: int) -> bytes:
    return b'{"a": ' * depth + b"1" + b"}" * depth


def write(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"body": {"model": "openai/x"}}', "missing custom_id"),
        (b'{"custom_id": "a"}', "missing body"),
        (b'{"custom_id": "a", "body": {"model": "openai/x", "stream": true}}', "stream"),
        (b'{"custom_id": "a", "method": "GET", "body": {"model": "openai/x"}}', "method"),
        (
            b'{"custom_id": "a", "url": "/v1/images", "body": {"model": "openai/x"}}',
            "not supported by openai",
        ),
        # Values PostgreSQL's text columns cannot store, or the JSON encoder cannot write.
        (b'{"custom_id": "a\\u0000", "body": {"model": "openai/x"}}', "custom_id contains a NUL"),
        (b'{"custom_id": "a", "body": {"model": "openai/x\\u0000"}}', "body.model contains a NUL"),
        (
            b'{"custom_id": "' + b"c" * 513 + b'", "body": {"model": "openai/x"}}',
            "custom_id is 513 characters long; the limit is 512",
        ),
        (
            b'{"custom_id": "a", "body": {"model": "openai/' + b"m" * 129 + b'"}}',
            "body.model is 129 characters long; the limit is 128",
        ),
        (
            b'{"custom_id": "a", "body": {"model": "openai/x", "x": ' + nested(200) + b"}}",
            "body is nested too deeply (more than 128 levels",
        ),
        (
            b'{"custom_id": "a", "body": {"model": "openai/x", "x": ' + nested(600) + b"}}",
            "body is nested too deeply (more than 128 levels",
        ),
        (
            b'{"custom_id": "a", "body": {"model": "openai/x", "x": ' + nested(5000) + b"}}",
            "the line is nested too deeply (more than 1024 levels",
        ),
    ],
)
async def test_bad_line_names_file_and_line(tmp_path: Path, text: bytes, message: str) -> None:
    good = orjson.dumps(line("ok", model="openai/gpt-4o-mini"))
    path = write(tmp_path, [good, text])
    with pytest.raises(InputError) as info:
        await read(path, model=None)
    assert f"{path}:2:" in str(info.value)
    assert message in str(info.value)
    assert info.value.line == 2


async def test_values_at_the_limits_are_read_and_over_them_refused_from_python_too() -> None:
    at_limits = {
        "custom_id": "c" * 512,
        "body": {
            "model": "openai/" + "m" * 128,
            "messages": [{"role": "user", "content": "a NUL \x00 in a prompt is kept"}],
            "x": orjson.loads(nested(127)),  # with the body itself: 128 levels
        },
    }
    await read([at_limits], model=None)
    deeper = {**at_limits, "body": {**at_limits["body"], "x": orjson.loads(nested(128))}}
    with pytest.raises(InputError) as info:
        await read([at_limits | {"custom_id": "ok"}, deeper], model=None)
    assert str(info.value).startswith("line 2: body is nested too deeply")
    assert info.value.field == "body"
    for field, value in (("custom_id", "a\x00"), ("model", "openai/a\x00")):
        bad = line("a\x00") if field == "custom_id" else line("a", model=value)
        with pytest.raises(InputError) as info:
            await read([bad], model=None)
        assert "contains a NUL character" in str(info.value) and info.value.field == field


async def test_duplicate_custom_id(tmp_path: Path) -> None:
    path = write(
        tmp_path, [orjson.dumps(line("a")), orjson.dumps(line("b")), orjson.dumps(line("a"))]
    )
    with pytest.raises(InputError, match=r":3: duplicate custom_id 'a'"):
        await read(path)


async def test_unknown_provider_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, [orjson.dumps(line("a", model="nosuch/model"))])
    with pytest.raises(InputError, match=r":1: unknown provider 'nosuch'"):
        await read(path, model=None)


async def test_errors_carry_their_location_and_field_apart(tmp_path: Path) -> None:
    """Front ends name the place in their own terms (the gateway says `line N` or
    `requests[i]`), so the message without location and the field travel apart."""
    bad = line("b", model="openai/gpt-4o-mini")
    bad["body"]["stream"] = True
    path = write(tmp_path, [orjson.dumps(line("a")), orjson.dumps(bad)])
    with pytest.raises(InputError) as info:
        await read(path)
    assert (info.value.path, info.value.line) == (str(path), 2)
    assert info.value.field == "stream"
    assert info.value.detail == "body.stream is true; batch requests cannot stream"
    assert str(info.value) == f"{path}:2: {info.value.detail}"

    with pytest.raises(InputError) as info:
        await read([line("a", model="openai/x"), line("b", model="nosuch/model")], model=None)
    assert (info.value.path, info.value.line, info.value.field) == (None, 2, "model")
    assert str(info.value) == "line 2: " + info.value.detail


def test_an_unknown_provider_is_bad_input() -> None:
    with pytest.raises(InputError):
        split_model("nosuch/model")


async def test_missing_key_names_variable() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        await read([line("a")], env={})


async def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no requests"):
        await read(write(tmp_path, [b""]))


def test_split_model() -> None:
    assert split_model("openai/gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert split_model("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert split_model("openai/ft:gpt-4o:org") == ("openai", "ft:gpt-4o:org")
    with pytest.raises(UnknownProviderError, match="provider/model"):
        split_model("gpt-4o-mini")


async def test_plan_groups_by_model_and_endpoint() -> None:
    lines = [line(f"r{i}", model=f"openai/m{i % 2}") for i in range(10)]
    lines.append({**line("emb", model="openai/e"), "url": "/v1/embeddings"})
    planner = await read(lines, model=None)
    rows = sorted(planner.rows(), key=lambda r: (r["model"], r["endpoint"]))
    assert [(r["model"], r["endpoint"], r["request_count"]) for r in rows] == [
        ("e", "/v1/embeddings", 1),
        ("m0", "/v1/chat/completions", 5),
        ("m1", "/v1/chat/completions", 5),
    ]


def test_plan_splits_at_request_limit() -> None:
    planner = Planner("b", 0.0)
    spec = limited(OPENAI, requests=3)
    ids = [planner.assign(spec, "m", "/v1/chat/completions", 10, "x") for _ in range(7)]
    assert len(set(ids)) == 3
    assert [r["request_count"] for r in planner.rows()] == [3, 3, 1]


def test_plan_splits_at_byte_limit() -> None:
    planner = Planner("b", 0.0)
    spec = limited(OPENAI, size=100)
    ids = [planner.assign(spec, "m", "/v1/chat/completions", 40, "x") for _ in range(5)]
    assert [r["byte_count"] for r in planner.rows()] == [80, 80, 40]
    assert len(set(ids)) == 3
    with pytest.raises(LimitError, match="x: request is 101 bytes"):
        planner.assign(spec, "m", "/v1/chat/completions", 101, "x")


async def test_plan_counts_translated_size() -> None:
    """Anthropic requests grow in translation (a forced tool for JSON output): the planner
    must split by the size Anthropic will receive, not the size the user wrote."""
    body = {
        "messages": [{"role": "user", "content": "x" * 100}],
        "response_format": {"type": "json_object"},
    }
    lines = [{"custom_id": f"r{i}", "body": body} for i in range(8)]
    planner = await read(
        lines,
        model="anthropic/claude-haiku-4-5",
        env={"ANTHROPIC_API_KEY": "k"},
        specs={"anthropic": limited(ANTHROPIC, size=2000)},
    )
    sizes = [r["byte_count"] for r in planner.rows()]
    assert all(size <= 2000 for size in sizes)
    translated = AnthropicProvider.line_bytes(
        RequestLine("r0", {**body, "model": "claude-haiku-4-5"}, 0)
    )
    assert sum(sizes) == 8 * translated
    assert translated > len(orjson.dumps(body)) + 100
