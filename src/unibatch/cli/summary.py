"""A batch's summary (`unibatch status`), as rows, and as plain text without rich.

rich takes about 0.1 s of CPU to import, a third of what `status` may take. Printed to
a file or a pipe, rich writes a summary as box-drawn text with no styles, which this
module writes the same, character for character (tests/unit/test_summary_text.py
compares them). Where rich would do more than lay out text (a terminal, a cell with
markup, emoji codes, wide or control characters), `plain_table` declines and rich
prints it.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, TextIO

import orjson

from unibatch.types import Batch

# Cells rich prints as they are: printable ASCII without markup (`[`) or emoji codes
# (`:name:`), and no space at either end (rich would not keep those as they are).
_PLAIN = re.compile(r"[!-9;-Z\\\]-~](?:[ -9;-Z\\\]-~]*[!-9;-Z\\\]-~])?")


def money(value: float) -> str:
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(moment))


def summary_rows(batch: Batch) -> tuple[str, list[tuple[str, str]]]:
    """The summary table's title and its rows (name, value)."""
    counts, usage = batch.request_counts, batch.usage
    rows = [
        ("status", batch.status.value),
        ("providers", ", ".join(batch.providers) or "-"),
        ("requests", str(counts.total)),
        ("succeeded", str(counts.succeeded)),
        ("errored", str(counts.errored)),
    ]
    rows += [
        (name, str(n))
        for name, n in (
            ("expired", counts.expired),
            ("cancelled", counts.cancelled),
            ("pending", counts.pending),
        )
        if n
    ]
    written = f", {usage.cache_write_tokens:,} cache writes" if usage.cache_write_tokens else ""
    rows.append(
        (
            "tokens",
            f"{usage.input_tokens:,} in ({usage.cached_tokens:,} cached{written}), "
            f"{usage.output_tokens:,} out ({usage.reasoning_tokens:,} reasoning)",
        )
    )
    rows.append(("cost (batch prices)", money(batch.cost.total)))
    if batch.waiting is not None:
        wait = batch.waiting
        rows.append(
            (
                "waiting for capacity",
                f"{wait.jobs} jobs, {wait.requests:,} requests (provider queue full)",
            )
        )
        rows += [("why waiting", reason) for reason in wait.reasons[:5]]
    if batch.deadline is not None:
        said = utc(batch.deadline)
        if batch.deadline_switched_at is not None:
            said += f" (rest in real time since {utc(batch.deadline_switched_at)})"
        rows.append(("deadline", said))
    rows += [("provider error", error) for error in batch.errors[:5]]
    return f"batch {batch.id}", rows


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def plain_output(stream: TextIO) -> bool:
    """Whether rich, writing to `stream`, would write text without styles: not a
    terminal (nor told to act as one) and a UTF-8 encoding (its box characters)."""
    if os.environ.get("FORCE_COLOR") is not None or os.environ.get("TTY_COMPATIBLE") == "1":
        return False
    try:
        if stream.isatty():
            return False
    except ValueError:
        return False
    return (getattr(stream, "encoding", None) or "").lower().replace("-", "").startswith("utf8")


def plain_table(title: str, rows: Sequence[tuple[str, str]]) -> str | None:
    """The text rich writes for a two-column table of `rows` under `title` (no header,
    square box, at its natural width); None where the cells need rich."""
    if not all(_PLAIN.fullmatch(cell) for row in rows for cell in row):
        return None
    if not _PLAIN.fullmatch(title):
        return None
    left = max(len(name) for name, _ in rows)
    right = max(len(value) for _, value in rows)
    width = left + right + 7  # three borders and a space on each side of each cell
    if len(title) > width:
        return None  # rich would wrap the title
    lines = [
        title.ljust(width),
        f"┌{'─' * (left + 2)}┬{'─' * (right + 2)}┐",
        *(f"│ {name.ljust(left)} │ {value.ljust(right)} │" for name, value in rows),
        f"└{'─' * (left + 2)}┴{'─' * (right + 2)}┘",
    ]
    return "\n".join(lines) + "\n"


def _rich_width() -> int:
    # rich's own reckoning, for output that is not a terminal: the first standard stream
    # that has a terminal size, COLUMNS over that, else 80.
    width = 0
    for fd in (0, 1, 2):
        try:
            width = os.get_terminal_size(fd).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    return width or 80


def plain_line(text: str, stream: TextIO) -> str | None:
    """`text` as rich's `Console.print` writes it to `stream` (a line of its own), or
    None where rich would style, change or wrap it."""
    if not plain_output(stream) or not _PLAIN.fullmatch(text) or len(text) > _rich_width():
        return None
    return text + "\n"
