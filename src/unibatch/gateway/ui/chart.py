"""The usage chart: requests per model over time as stacked bars in inline SVG, drawn on
the server (no chart library, no script)."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

# Colour-blind-safe palette (Okabe-Ito), one colour per model in legend order.
_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
RANGES = {"24h": (24, 3600.0), "14d": (14, 86400.0)}
_W, _H, _PAD_L, _PAD_B, _PAD_T = 720, 240, 48, 28, 10


@dataclass(frozen=True, slots=True)
class Series:
    model: str
    colour: str
    total: int


def buckets(span: str, now: float | None = None) -> tuple[float, float, int]:
    """(start, bucket seconds, bucket count) of the range named `span` ("24h", "14d")."""
    count, size = RANGES[span]
    end = math.floor((now or time.time()) / size) * size + size
    return end - count * size, size, count


def render(
    rows: Iterable[Mapping[str, Any]], span: str, now: float | None = None
) -> tuple[str, list[Series]]:
    """The SVG of `rows` (provider, model, submitted_at, request_count) over `span`, and
    its series (one per model, most requests first) for the legend."""
    start, size, count = buckets(span, now)
    grid: dict[str, list[int]] = defaultdict(lambda: [0] * count)
    for row in rows:
        index = int((row["submitted_at"] - start) // size)
        if 0 <= index < count:
            grid[f"{row['provider']}/{row['model']}"][index] += int(row["request_count"])
    models = sorted(grid, key=lambda m: -sum(grid[m]))
    series = [Series(m, _COLOURS[i % len(_COLOURS)], sum(grid[m])) for i, m in enumerate(models)]
    tallest = max((sum(grid[m][i] for m in models) for i in range(count)), default=0) or 1
    plot_w, plot_h = _W - _PAD_L - 8, _H - _PAD_B - _PAD_T
    step = plot_w / count
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="requests per model" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{_PAD_L}" y1="{_PAD_T + plot_h}" x2="{_W - 8}" y2="{_PAD_T + plot_h}" '
        'stroke="#999"/>',
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + 10}" text-anchor="end">{tallest}</text>',
        f'<text x="{_PAD_L - 6}" y="{_PAD_T + plot_h}" text-anchor="end">0</text>',
    ]
    for i in range(count):
        base = float(_PAD_T + plot_h)
        for s in series:
            n = grid[s.model][i]
            if not n:
                continue
            h = plot_h * n / tallest
            base -= h
            parts.append(
                f'<rect x="{_PAD_L + i * step + 1:.1f}" y="{base:.1f}" width="{step - 2:.1f}" '
                f'height="{h:.1f}" fill="{s.colour}"><title>{escape(s.model)}: {n}</title></rect>'
            )
        if i % max(1, count // 6) == 0:
            shape = "%H:00" if size < 86400 else "%m-%d"
            label = time.strftime(shape, time.gmtime(start + i * size))
            parts.append(f'<text x="{_PAD_L + i * step:.1f}" y="{_H - 8}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts), series
