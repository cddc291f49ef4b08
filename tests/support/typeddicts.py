"""Check a JSON value against an SDK's TypedDict request types, extra keys refused.

The anthropic SDK describes requests as TypedDicts, which pydantic cannot build a schema
for here (IO and iterable fields) and which accept unknown keys at run time. This walks
the annotations instead: every key must be one the type declares, every required key
present, and every value of its declared type (unions take the first option that fits).
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any

import typing_extensions

_WRAPPERS = {typing_extensions.Required, typing_extensions.NotRequired, typing.Annotated}


def problems(value: Any, tp: Any, where: str = "$") -> list[str]:
    """Why `value` is not a `tp` (empty when it is)."""
    origin = typing_extensions.get_origin(tp)
    args = typing_extensions.get_args(tp)
    if origin in _WRAPPERS or origin is typing_extensions.Annotated:
        return problems(value, args[0], where)
    if tp is Any or tp is object:
        return []
    if typing_extensions.is_typeddict(tp):
        return _typeddict(value, tp, where)
    if origin in (typing.Union, types.UnionType):
        found = [problems(value, option, where) for option in args]
        return [] if any(not p for p in found) else min(found, key=len)
    if origin is typing_extensions.Literal or origin is typing.Literal:
        return [] if value in args else [f"{where}: {value!r} is not one of {args}"]
    if tp is type(None):
        return [] if value is None else [f"{where}: expected null"]
    if tp in (str, int, float, bool):
        ok = isinstance(value, tp) and not (tp is not bool and isinstance(value, bool))
        ok = ok or (tp is float and isinstance(value, int) and not isinstance(value, bool))
        return [] if ok else [f"{where}: {value!r} is not {tp.__name__}"]
    if origin in (dict, collections.abc.Mapping):
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    if origin in (list, collections.abc.Iterable, collections.abc.Sequence) or (
        getattr(tp, "__name__", "") == "SequenceNotStr"
    ):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        item = args[0] if args else Any
        return [p for i, v in enumerate(value) for p in problems(v, item, f"{where}[{i}]")]
    if isinstance(tp, type):
        # An SDK response model (accepted in params only as a Python object) or IO: a
        # JSON request is never one of these.
        return [f"{where}: a JSON value cannot be a {tp.__name__}"]
    return []


def _typeddict(value: Any, tp: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{where}: expected an object ({tp.__name__})"]
    hints = typing_extensions.get_type_hints(tp, include_extras=True)
    out = [f"{where}.{key}: not a field of {tp.__name__}" for key in value if key not in hints]
    out += [f"{where}.{key}: missing" for key in tp.__required_keys__ if key not in value]
    for key, item in value.items():
        if key in hints:
            out += problems(item, hints[key], f"{where}.{key}")
    return out
