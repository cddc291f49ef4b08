"""Deterministic building blocks of fake results, shared by every provider's fakes.

Ids, coin flips and text all derive from stable digests, never from the process or a
global random state, so two reads of one result file are byte-identical.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any


def hex_digest(*parts: object, size: int = 16) -> str:
    """A stable hex digest of ``parts`` (ids and choices must not depend on the process)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=size).hexdigest()


def unit(*parts: object) -> float:
    """A uniform number in [0, 1) determined by ``parts``."""
    return int(hex_digest(*parts, size=8), 16) / 2**64


def tokens(text: str) -> int:
    """A plausible token count: about four characters a token, as the providers' own."""
    return max(1, math.ceil(len(text) / 4))


def text_of(value: Any) -> str:
    """All human text in a message content / input value, joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(text_of(v) for v in value)
    if isinstance(value, dict):
        return " ".join(text_of(value[k]) for k in ("text", "content") if k in value)
    return ""
