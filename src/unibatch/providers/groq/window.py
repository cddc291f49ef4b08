"""Groq's completion windows: "Durations from `24h` to `7d` are supported" (the `groq`
SDK's `batch_create_params.py`; https://console.groq.com/docs/batch), written as a whole
number of hours or days."""

from __future__ import annotations

import re

DEFAULT = "24h"
SHORTEST = 24 * 3600
LONGEST = 7 * 24 * 3600
_WINDOW = re.compile(r"([1-9]\d*)([hd])")


def window_seconds(text: str) -> int | None:
    """The window in seconds, or None when Groq does not take it.

    >>> window_seconds("24h"), window_seconds("7d"), window_seconds("8d"), window_seconds("1h")
    (86400, 604800, None, None)
    """
    found = _WINDOW.fullmatch(text.strip())
    if found is None:
        return None
    seconds = int(found[1]) * (3600 if found[2] == "h" else 86400)
    return seconds if SHORTEST <= seconds <= LONGEST else None
