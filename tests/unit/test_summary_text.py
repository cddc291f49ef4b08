"""`unibatch status` printed to a file or a pipe without rich (`cli.summary.plain_table`)
is what rich prints there, character for character; cells rich would do more with are
left to rich."""

from __future__ import annotations

import pytest

from unibatch.cli.render import print_table, summary
from unibatch.cli.summary import plain_line, plain_table, summary_rows
from unibatch.types import Batch, BatchStatus, Cost, RequestCounts, Usage


def _batch(**changes: object) -> Batch:
    values: dict[str, object] = {
        "id": "ubb_01a22de81fcbc6ef7a6ea41d910b",
        "status": BatchStatus.IN_PROGRESS,
        "created_at": 1.0,
        "request_counts": RequestCounts(total=10, pending=10),
        "usage": Usage(),
        "cost": Cost(),
        "endpoint": "/v1/chat/completions",
        "providers": ("openai",),
    }
    return Batch(**(values | changes))  # type: ignore[arg-type]


PLAIN = [
    _batch(),
    _batch(
        status=BatchStatus.COMPLETED,
        request_counts=RequestCounts(
            total=1_234_567, succeeded=1_200_000, errored=30_000, expired=4_000, cancelled=567
        ),
        usage=Usage(1_234_567_890, 98_765_432, 1_000, 77, cache_write_tokens=5),
        cost=Cost(12345.678, 0.5),
        providers=("anthropic", "gemini", "openai"),
    ),
    _batch(providers=(), cost=Cost(0.000123, 0.0)),
    _batch(errors=("HTTP 500 from the provider (retried 3 times)",) * 7),
    _batch(errors=("x" * 300,)),
]
RICH = [
    _batch(errors=("[bold]not markup[/bold]",)),
    _batch(errors=("quota exceeded :warning: try later",)),
    _batch(errors=("two\nlines",)),
    _batch(errors=("caf\u00e9 \u65e5\u672c",)),
    _batch(errors=(" padded ",)),
]


@pytest.mark.parametrize("batch", PLAIN)
def test_plain_text_is_richs(batch: Batch, capsys: pytest.CaptureFixture[str]) -> None:
    print_table(summary(batch))
    written = capsys.readouterr().out
    assert plain_table(*summary_rows(batch)) == written


@pytest.mark.parametrize("batch", RICH)
def test_what_rich_would_change_is_left_to_it(batch: Batch) -> None:
    assert plain_table(*summary_rows(batch)) is None


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("wrote 100000 results to /tmp/out.jsonl", None),
        ("wrote 3 results to " + "d/" * 40 + "out.jsonl", None),  # longer than 80: wrapped
        ("wrote 3 results to " + "d/" * 40 + "out.jsonl", "200"),
        ("wrote 3 results to /tmp/[x].jsonl", None),  # markup
        ("wrote 3 results to /tmp/a b:smile:.jsonl", None),  # an emoji code
    ],
)
def test_a_notice_is_what_rich_writes(
    text: str, columns: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from io import StringIO

    from rich.console import Console

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)

    class Stream(StringIO):
        encoding = "utf-8"  # a pipe's, as rich sees it

    stream = Stream()
    Console(file=stream).print(text)
    plain = plain_line(text, stream)
    assert plain is None or plain == stream.getvalue()
    assert (plain is None) == ("[" in text or ":" in text or len(text) > int(columns or 80))
