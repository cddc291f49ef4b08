"""Durations as users write them: `90` or `90s`, `30m`, `6h`, `1d`, `1h30m`."""

from __future__ import annotations

import re

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")


def seconds(value: str) -> float:
    """The seconds `value` says; `ValueError` naming it when it is not a duration."""
    text = value.strip().lower()
    if _NUMBER.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 30m, 6h, 1d or 1h30m")
    return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
