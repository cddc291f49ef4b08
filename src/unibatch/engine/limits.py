"""What a request line may hold, so that a line the store or the JSON encoder cannot take is
refused while the input is read, naming the line and field, instead of failing deep in a
write (PostgreSQL refuses NUL in text and longer values than a column holds; orjson stops
encoding at 255 levels of nesting).

OpenAI documents no length limit for `custom_id`; 512 characters is what our `requests`
and `results` tables hold. Request bodies are stored as bytes, so a NUL inside a prompt
(`"\\u0000"`) is kept as it is; only the values that land in text columns must be free of
it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

# The widths of the text columns these values are stored in (store/tables.py).
MAX_CUSTOM_ID = 512
MAX_MODEL = 128
# Levels of nesting a request body may have. Real bodies stay far below this (OpenAI
# allows 10 levels of nesting in a structured-output schema, about 25 JSON levels inside
# a body); orjson cannot encode more than 254, and the providers' envelopes add a few.
MAX_DEPTH = 128
# orjson's own limit when it parses a line.
MAX_PARSE_DEPTH = 1024


class ValueRefused(ValueError):
    """A value over a limit; the message reads after the field's name."""


def check_text(value: str, limit: int) -> None:
    """Refuse text a text column cannot store: a NUL character, or more than `limit`."""
    if "\x00" in value:
        raise ValueRefused("contains a NUL character (\\u0000), which cannot be stored")
    if len(value) > limit:
        raise ValueRefused(f"is {len(value)} characters long; the limit is {limit}")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests more than `limit` arrays and objects, walked without
    recursion (a recursive walk would itself blow up on the values it looks for)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, Mapping) else item
        for child in children:
            if isinstance(child, Mapping | list | tuple):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def nested_too_deeply(limit: int = MAX_DEPTH) -> str:
    return f"is nested too deeply (more than {limit} levels of arrays and objects)"


def encode_body(body: Mapping[str, Any]) -> bytes:
    """The body as JSON bytes, or `ValueRefused` when it nests too deeply or holds what
    JSON cannot (an integer over 64 bits)."""
    try:
        data = orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        if too_deep(body):
            raise ValueRefused(nested_too_deeply()) from None
        raise ValueRefused(f"cannot be encoded as JSON: {exc}") from None
    # Nesting cannot exceed the number of brackets: only bodies with many are walked.
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and too_deep(body):
        raise ValueRefused(nested_too_deeply())
    return data


def line_too_deep(raw: bytes, data: Any) -> bool:
    """Whether a JSON line (`raw`, parsed as `data`) nests more than a body may, checked
    cheaply first: for readers that only skip such lines (the engine's reader names them)."""
    return raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and too_deep(data, MAX_DEPTH + 1)
